import ArgumentParser
import BridgeHTTP
import CurlClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: the webhook receiver and health endpoints.",
        discussion: "With no options it listens on 127.0.0.1:8080, keeps its data under ./var and reads mappings from ./mappings. SIGTERM or SIGINT stops it gracefully."
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT (port 0 picks a free port).", valueName: "host:port"))
    var listen: String = "127.0.0.1:8080"

    @Option(name: .long, help: ArgumentHelp("Directory for the store and generated files (created 0700).", valueName: "dir"))
    var dataDir: String = "var"

    @Option(name: .long, help: ArgumentHelp("Directory of mapping files.", valueName: "dir"))
    var mappings: String = "mappings"

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String = "info"

    func validate() throws {
        guard ListenAddress(listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT with a port from 0 to 65535, got '\(listen)'")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        umask(0o077)
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard let address = ListenAddress(listen) else { throw ValidationError("invalid --listen") }
        try DataDirectory.prepare(path: dataDir)
        Curl.initialize()

        let app = BridgeServer.makeApplication(
            configuration: BridgeServerConfiguration(host: address.host, port: address.port),
            readiness: DataDirectoryReadiness(path: dataDir),
            logger: logger,
            onListening: { [logger] host, port in
                logger.notice("listening", metadata: ["address": "\(host):\(port)"])
            }
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [app],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// `HOST:PORT`, with `[v6]:PORT` for IPv6 literals.
struct ListenAddress: Equatable {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }
}

enum DataDirectory {
    /// Creates the directory 0700, or tightens an existing one to 0700: it holds personal data.
    static func prepare(path: String) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        guard chmod(path, 0o700) == 0 else {
            throw ValidationError("cannot set permissions 0700 on data directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}
