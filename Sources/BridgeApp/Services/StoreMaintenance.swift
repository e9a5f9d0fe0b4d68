import Clocks
import Domain
import Logging
import Metrics
import ServiceLifecycle
import StoreSQLite

/// Background upkeep of the embedded store: WAL checkpoints off the commit
/// path, the job gauges for `/metrics` every second, and retention of raw
/// bodies every ten minutes.
public struct StoreMaintenance: Service {
    let store: SQLiteStore
    let clock: any WallClock
    let retention: RetentionPolicy
    let walPolicy: WALPolicy
    let logger: Logger
    /// Made once: the factory looks a gauge up by label and dimensions.
    let jobGauges: [(state: JobState, gauge: Metrics.Gauge)]
    let oldestPending: Metrics.Gauge

    /// `retention` bounds how long raw bodies stay; `walPolicy` how large the WAL may grow.
    public init(
        store: SQLiteStore, clock: any WallClock, retention: RetentionPolicy, walPolicy: WALPolicy, metricsFactory: any MetricsFactory,
        logger: Logger
    ) {
        self.store = store
        self.clock = clock
        self.retention = retention
        self.walPolicy = walPolicy
        self.logger = logger
        self.jobGauges = JobState.gauged.map {
            ($0, Metrics.Gauge(label: "jobylon_bridge_jobs", dimensions: [("state", $0.rawValue)], factory: metricsFactory))
        }
        self.oldestPending = Metrics.Gauge(label: "jobylon_bridge_oldest_pending_job_seconds", factory: metricsFactory)
    }

    /// Ticks every second, purges every ten minutes (and at once), until shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var ticks = 0
            while !Task.isCancelled {
                if ticks % 600 == 0 { await purge() }
                await tick()
                ticks += 1
                try await clock.sleep(for: .seconds(1))
            }
        }
    }

    /// Deletes raw bodies whose retention ended.
    public func purge() async {
        do {
            let purged = try await store.purgeExpiredBodies(now: clock.now(), policy: retention)
            if purged.inbox + purged.quarantine > 0 {
                logger.notice("retention: raw bodies deleted", metadata: ["inbox": "\(purged.inbox)", "quarantine": "\(purged.quarantine)"])
            }
        } catch {
            logger.warning("retention purge failed", metadata: ["error": "\(error)"])
        }
    }

    /// One round of WAL upkeep and gauges.
    public func tick() async {
        do {
            try await store.maintainWAL(policy: walPolicy)
            let stats = try await store.jobStatistics(now: clock.now())
            for (state, gauge) in jobGauges { gauge.record(stats.counts[state.rawValue] ?? 0) }
            oldestPending.record(Double(stats.oldestPendingAge ?? 0) / 1000)
        } catch {
            logger.warning("store maintenance failed", metadata: ["error": "\(error)"])
        }
    }
}
