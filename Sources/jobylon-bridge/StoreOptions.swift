import ArgumentParser
import BridgeApp
import Foundation

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

/// Runs an operator step; a refusal is printed as `error: …` and exits 1
/// (it is not a usage mistake, so no usage text follows).
func refusing<T>(_ body: () throws(OperatorFailure) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(1)
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
