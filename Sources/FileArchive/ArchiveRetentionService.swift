import Clocks
import DurableFiles
import Logging
import ServiceLifecycle

/// Runs the archive purge every `interval` (and once at start): files past
/// their retention are deleted with their sidecars and records.
public struct ArchiveRetentionService: Service {
    let purger: ArchivePurger
    let io: BlockingIOPool
    let clock: any WallClock
    let interval: Duration
    let logger: Logger

    /// Each purge runs on `io` (file deletions and store calls block); `interval`
    /// is the pause between runs.
    public init(purger: ArchivePurger, io: BlockingIOPool, clock: any WallClock, interval: Duration = .seconds(3600), logger: Logger) {
        self.purger = purger
        self.io = io
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    /// Purges at once, then every `interval`, until graceful shutdown; failures
    /// are logged and the files are tried again next round.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let outcome: ArchivePurger.Outcome
                do throws(IOFailure) {
                    outcome = try await io.run { [purger, clock] in purger.purge(now: clock.now(), dryRun: false) }
                } catch {
                    return
                }
                if outcome.deleted > 0 {
                    logger.notice("archive retention: files deleted", metadata: ["files": "\(outcome.deleted)", "bytes": "\(outcome.bytes)"])
                }
                for failure in outcome.failures {
                    logger.error("archive retention: purge failed", metadata: ["error": "\(failure)"])
                }
                try await clock.sleep(for: interval)
            }
        }
    }
}
