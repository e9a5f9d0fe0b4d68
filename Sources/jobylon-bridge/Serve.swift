import ArgumentParser
import BridgeApp
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: webhook receiver, durable store, job runner, health and metrics.",
        discussion: """
            With no options it listens on 127.0.0.1:8080, keeps its data under ./var and reads mappings \
            from ./mappings. Webhook tokens come from JOBYLON_BRIDGE_TOKEN (comma-separated) or a token \
            file; on a loopback address with none configured, one is generated into the data directory. \
            SIGTERM or SIGINT stops it gracefully; SIGHUP reloads the mappings and the secrets directory.
            """
    )

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT (port 0 picks a free port).", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Directory of mapping files.", valueName: "dir"))
    var mappings: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String?

    func run() async throws {
        var options = store.overrides
        if let listen { options["listen"] = listen }
        if let mappings { options["mappings_dir"] = mappings }
        if let logLevel { options["log_level"] = logLevel }
        let config = try store.configuration(options: options)
        guard let level = Logger.Level(rawValue: config.logLevel) else {
            throw ValidationError("log level must be one of trace, debug, info, notice, warning, error, critical")
        }
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = level
        let application = try await BridgeApplication.start(configuration: config, logger: logger)
        try await application.run()
    }
}
