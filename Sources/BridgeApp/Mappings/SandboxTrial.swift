import Clocks
import CurlClient
import Domain
import Foundation
import JSON
import Mapping
import RESTDelivery

/// What `jobylon-bridge try` does: one event sent for real through a flow
/// (or a `rest` mapping, a flow of one step) to a sandbox, step by step,
/// with each request and answer printed masked, and nothing stored. The
/// same rendering, outcome rules and captures as the daemon (`FlowDryRun`),
/// the same request building (`RestRequestBuilder`) and libcurl client.
public enum SandboxTrial {
    /// Why a trial could not start.
    public enum Problem: Error, CustomStringConvertible {
        /// Only `rest` and `flow` mappings send requests.
        case notSendable(mapping: String, kind: String)

        public var description: String {
            switch self {
            case .notSendable(let mapping, let kind): return "try sends rest and flow mappings; \(mapping) is \(kind) (use map for a dry run)"
            }
        }
    }

    /// Runs the trial, writing lines to `print`; returns whether every step
    /// that was reached succeeded (a failure, a retry, an error or a step
    /// that could not be sent is `false`).
    public static func run(
        _ mapping: MappingFile, event: MappingEvent, variables: VariableSource, now: String, verifyPeer: Bool, client: CurlClient,
        print: (String) -> Void
    ) async throws -> Bool {
        let sender = RestSender(
            client: client, clock: SystemWallClock(), tls: RestExecutor.TLSSettings(insecureSkipVerify: !verifyPeer), tokens: OAuth2Tokens())
        let flow: FlowTarget
        switch mapping.target {
        case .flow(let target): flow = target
        case .rest(let rest):
            flow = FlowTarget(singleRequest: rest, named: mapping.name)
        default: throw Problem.notSendable(mapping: mapping.name, kind: mapping.kind)
        }
        var planned: JSONValue = .null
        switch mapping.plan(event, now: now) {
        case .noMatch(let reason):
            print("no match: \(reason)")
            return true
        case .failed(let message):
            print("error: \(message)")
            return false
        case .planned(let jobs):
            planned = jobs.first?.payload ?? .null
        }
        var run = FlowDryRun(mapping: mapping, flow: flow, event: event, now: now)
        let companyID = EventFile.companyID(event.data)
        var succeeded = true
        var reported = 0
        // Skipped steps and errors, as the run records them.
        func report(upTo end: Int) {
            while reported < end {
                let entry = run.entries[reported]
                let name = entry["step"]?.stringValue ?? "?"
                if let skipped = entry["skipped"]?.stringValue { print("── step \(name): skipped (\(skipped))") }
                if let error = entry["error"]?.stringValue {
                    print("── step \(name): error: \(error)")
                    succeeded = false
                }
                reported += 1
            }
        }
        while let (step, request) = run.nextRequest() {
            report(upTo: run.entries.count - 1)
            reported = run.entries.count
            // The event's personal values that any step sends (as planned) and
            // this one sends, masked wherever they appear (an answer may quote
            // what an earlier step sent).
            let redactor = Redactor(
                payload: [
                    "body": .array([planned["body"] ?? .null, request["body"] ?? .null]),
                    "query": .array([planned["query"] ?? .null, request["query"] ?? .null]),
                ])
            let shown = MapOutput.shown(request, kind: "rest", variables, mask: true)
            print("── step \(step.name): \(shown["method"]?.stringValue ?? "") \(redactor.redact(shown["url"]?.stringValue ?? ""))")
            print(redactor.redact(JSONWriter.prettyString(shown)))
            let response: CurlResponse
            switch await sender.send(request, rest: step.request, variables: variables, companyID: companyID) {
            case .success(let answer): response = answer
            case .failure(.held(.missingVariables(let names))):
                print("not sent: missing variables \(names.joined(separator: ", ")) (set them, or --set NAME=VALUE)")
                run.stop(because: "missing variables")
                return false
            case .failure(.held(.authorizationNeeded(let credential, _))):
                // try stores nothing, so it cannot spend the daemon's stored refresh token (a rotation here would
                // leave the daemon with a spent one).
                print(
                    "not sent: credential \(credential) is an OAuth2 refresh-token grant, which try does not use (a refresh "
                        + "would spend the stored token); for a sandbox, give the step a bearer ${VARIABLE} with a sandbox access token")
                run.stop(because: "held")
                return false
            case .failure(.held(let reason)):
                print("not sent: \(Redactor.redactPatterns(reason.description))")
                run.stop(because: "held")
                return false
            case .failure(.postponed(_, let reason)):
                print("not sent: \(reason)")
                run.stop(because: "postponed")
                return false
            case .failure(.permanent(let message)), .failure(.transient(let message)):
                print("no answer: \(Redactor.redactPatterns(message))")
                run.stop(because: "not sent")
                return false
            }
            run.record(status: response.status, headers: response.headers, body: response.body)
            let entry = run.entries.last ?? JSONObject()
            let outcome = entry["outcome"]?.stringValue ?? "?"
            print("answer: HTTP \(response.status) → \(outcome)\(entry["rule"].map { " (outcomes: \(JSONValue.plainText($0)))" } ?? "")")
            if let location = response.header("Location") { print("location: \(redactor.redact(location))") }
            print("body: \(redactor.redact(RestRequestBuilder.excerpt(response.body)))")
            if let captures = entry["captures"] { print("captures: \(redactor.redact(JSONWriter.string(captures)))") }
            if outcome == ResponseOutcome.fail.rawValue || outcome == ResponseOutcome.retry.rawValue { succeeded = false }
        }
        report(upTo: run.entries.count)
        return succeeded
    }
}
