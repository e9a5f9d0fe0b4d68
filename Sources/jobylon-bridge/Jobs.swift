import ArgumentParser
import Foundation
import Logging
import StoreSQLite

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List jobs (works while the daemon runs).",
        discussion: "States: pending, running, done, dead, held, in_doubt, skipped, cancelled."
    )

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "Only jobs in this state.")
    var state: String?

    @Option(name: .long, help: "Only jobs of this mapping.")
    var mapping: String?

    @Option(name: .long, help: "At most this many rows.")
    var limit: Int = 1000

    func run() throws {
        let config = try BridgeConfiguration.load(options: store)
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = .warning
        let sqlite = try SQLiteStore(directory: config.dataDir, logger: logger)
        defer { sqlite.close() }
        print("id\tevent\tmapping\tstate\tattempts\teffect_key\tdetail")
        for job in try sqlite.jobs(state: state, mapping: mapping, limit: limit) {
            let detail = job.skippedFor.map { "skipped for job \($0)" } ?? job.lastError ?? ""
            print("\(job.id)\t\(job.eventID)\t\(job.mapping)\t\(job.state)\t\(job.attempts)\t\(job.effectKey)\t\(detail)")
        }
    }
}
