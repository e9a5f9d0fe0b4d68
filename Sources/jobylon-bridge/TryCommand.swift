import ArgumentParser
import BridgeApp
import CurlClient
import Foundation
import Mapping

/// `jobylon-bridge try`: one flow (or `rest` request) sent for real to a
/// sandbox before it meets production (`SandboxTrial`).
struct Try: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one event through a flow or rest mapping to a sandbox and print each request and answer (masked); stores nothing.",
        discussion: """
            Variables come from the environment and --secrets-dir; --set NAME=VALUE overrides one (e.g. \
            --set HR_URL=https://sandbox.hr.example). Requests and answers are shown with the event's \
            personal values, IBANs, e-mail addresses, phone numbers and tokens masked; credentials never \
            appear. Exits 1 when a step fails, is retried or cannot be sent.
            """
    )

    @Option(name: .long, help: ArgumentHelp("A mapping name (in --mappings) or a mapping file.", valueName: "name|file"))
    var mapping: String

    @Option(name: .long, help: ArgumentHelp("A webhook body (JSON).", valueName: "file"))
    var event: String

    @Option(name: .long, help: ArgumentHelp("Mappings directory.", valueName: "dir"))
    var mappings: String = "mappings"

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a variable, e.g. HR_URL=https://sandbox.example (repeatable).", valueName: "name=value"))
    var overrides: [String] = []

    @Option(name: .long, help: ArgumentHelp("Directory of secret files, as serve reads it.", valueName: "dir"))
    var secretsDir: String?

    @Flag(name: .long, help: "Turn off TLS peer and host verification (a sandbox with a self-signed certificate).")
    var insecure = false

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        for pair in overrides {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--set takes NAME=VALUE, e.g. HR_URL=https://sandbox.example")
            }
            environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let variables = VariableSource(environment: environment, secretsDirectory: secretsDir)
        let file = try MappingArgument.load(mapping, directory: mappings, variables: variables)
        let now = MappingClock.iso8601(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        let input = try EventFile.event(from: try EventFile.read(event), receivedAt: now, source: event)
        let verifyPeer = !insecure
        let succeeded = try await CurlEngine.with { client in
            try await SandboxTrial.run(file, event: input, variables: variables, now: now, verifyPeer: verifyPeer, client: client) { print($0) }
        }
        if !succeeded { throw ExitCode(1) }
    }
}
