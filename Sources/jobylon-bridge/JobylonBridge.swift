import ArgumentParser

@main
struct JobylonBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobylon-bridge",
        abstract: "Receives Jobylon webhooks, stores them durably and hands hires on to payroll, CSV files and a CV archive.",
        version: BridgeVersion.current,
        subcommands: [
            Serve.self, Check.self, Map.self, Test.self, Try.self, Jobs.self, Replay.self, Export.self, Archive.self, Erase.self, OAuth.self,
            Config.self,
            Version.self,
        ],
        defaultSubcommand: nil
    )
}

enum BridgeVersion {
    static let current = "0.1.0"
}
