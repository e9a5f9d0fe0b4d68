import ArgumentParser
import BridgeApp

/// Options shared by every command that touches the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("JSON config file (keys in docs/CONFIG.md).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Data directory (default ./var).", valueName: "dir"))
    var dataDir: String?

    /// The command line's settings by file key.
    var overrides: [String: String] {
        dataDir.map { ["data_dir": $0] } ?? [:]
    }

    /// Defaults, file, environment, then `options` (file key → text).
    func configuration(options: [String: String]? = nil) throws -> BridgeConfiguration {
        do {
            return try BridgeConfiguration.load(configFile: config, options: options ?? overrides)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the configuration keys.",
        subcommands: [Keys.self],
        defaultSubcommand: Keys.self
    )

    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every configuration key as docs/CONFIG.md's table (file key, environment, option, default, meaning).")

        func run() {
            print(BridgeConfiguration.markdownTable, terminator: "")
        }
    }
}
