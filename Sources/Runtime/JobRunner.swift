import BridgeCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Settings of the runner.
public struct JobRunnerConfiguration: Sendable {
    public var leaseDuration: Duration = .seconds(30)
    /// Jobs run at once by this process.
    public var concurrency: Int = 32
    /// Longest sleep without a wake-up (a safety net; commits wake the runner at once).
    public var idlePoll: Duration = .seconds(5)
    public var retry = RetryPolicy()
    /// Which jobs this runner claims (the archive's downloads run in their own lane).
    public var lane: ClaimLane = .dueTime
    /// How claiming gives way while webhooks queue up for commits.
    public var yield = BackgroundYield()

    public init() {}
}

/// Claims due jobs under a lease, runs them through their executor and
/// records the outcome. A commit that creates jobs wakes it at once
/// (`wakeup.signal()`); retries and expired leases wake it on the clock.
public final class JobRunner: Service {
    let store: any JobStore
    let executors: [String: any JobExecutor]
    let clock: any WallClock
    let configuration: JobRunnerConfiguration
    let logger: Logger
    public let wakeup = Wakeup()
    public let owner: String
    let jobsFinished: Counter?
    let inFlight = Atomic<Int>(0)
    /// Claims step aside while webhooks queue up (never for long).
    let pressure: (any IngestPressure)?

    public init(
        store: any JobStore,
        executors: [any JobExecutor],
        clock: any WallClock,
        configuration: JobRunnerConfiguration = JobRunnerConfiguration(),
        owner: String,
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil,
        pressure: (any IngestPressure)? = nil
    ) {
        self.pressure = pressure
        self.store = store
        self.executors = Dictionary(executors.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
        self.clock = clock
        self.configuration = configuration
        self.owner = owner
        self.logger = logger
        self.jobsFinished = metricsFactory.map { Counter(label: "jobylon_bridge_job_attempts_total", factory: $0) }
    }

    public func run() async throws {
        logger.info("job runner started", metadata: ["owner": "\(owner)"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let free = configuration.concurrency - inFlight.load(ordering: .acquiring)
                    var claimed: [ClaimedJob] = []
                    if free > 0 {
                        await configuration.yield.wait(for: pressure, on: clock)
                        do {
                            let now = clock.now()
                            claimed = try await store.claimDueJobs(
                                owner: owner, now: now, limit: free, leaseUntil: now.adding(configuration.leaseDuration),
                                lane: configuration.lane)
                        } catch {
                            logger.error("claiming jobs failed", metadata: ["error": "\(error)"])
                        }
                    }
                    for job in claimed {
                        inFlight.add(1, ordering: .acquiringAndReleasing)
                        group.addTask {
                            await self.run(job)
                            self.inFlight.subtract(1, ordering: .acquiringAndReleasing)
                            self.wakeup.signal()
                        }
                    }
                    if free <= 0 || (!claimed.isEmpty && claimed.count == free) {
                        // Saturated: a finishing job signals the wake-up.
                        await wakeup.wait()
                    } else if claimed.isEmpty {
                        await waitForWork()
                    }
                }
                // Leaving the group waits for in-flight attempts: a graceful stop lets them finish.
            }
            do {
                try await store.releaseLeases(owner: owner, now: clock.now())
            } catch {
                logger.error("releasing leases failed", metadata: ["error": "\(error)"])
            }
            logger.info("job runner stopped")
        } onGracefulShutdown: {
            self.wakeup.signal()
        }
    }

    /// Idle: sleeps until a commit, a finished job, the next due time or lease
    /// expiry, or the poll interval, whichever comes first.
    private func waitForWork() async {
        let next = (try? await store.nextWakeUp(lane: configuration.lane)) ?? nil
        let cap = clock.now().adding(configuration.idlePoll)
        let deadline = next.map { min($0, cap) } ?? cap
        if deadline <= clock.now() { return }
        let timer = Task { [clock, wakeup] in
            try? await clock.sleep(until: deadline)
            wakeup.signal()
        }
        await wakeup.wait()
        timer.cancel()
    }

    func run(_ job: ClaimedJob) async {
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "mapping"] = "\(job.mapping)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        let completion: JobCompletion
        if let executor = executors[job.kind] {
            let renewal = Task { [store, clock, owner, configuration] in
                while !Task.isCancelled {
                    let interval = configuration.leaseDuration / 3
                    try await clock.sleep(for: interval)
                    try await store.renewLeases(jobIDs: [job.id], owner: owner, until: clock.now().adding(configuration.leaseDuration))
                }
            }
            let result = await executor.execute(job, logger: logger)
            renewal.cancel()
            completion = completionFor(result, job: job)
        } else {
            completion = .held(reason: "no executor for kind '\(job.kind)'")
        }
        do {
            try await store.complete(jobID: job.id, owner: owner, completion: completion, now: clock.now())
        } catch {
            // Not recorded: the lease runs out and the crash policy decides.
            logger.error("recording job outcome failed", metadata: ["error": "\(error)"])
        }
        jobsFinished?.increment()
    }

    func completionFor(_ result: ExecutionResult, job: ClaimedJob) -> JobCompletion {
        switch result {
        case .done(let capture): return .done(capture: capture)
        case .held(let reason): return .held(reason: reason)
        case .permanent(let reason): return .dead(reason: reason)
        case .expired(let reason): return .expired(reason: reason)
        case .retryBeforeDeadline(let reason, let after): return .retry(at: clock.now().adding(after), reason: reason)
        case .retryable(let reason, let after):
            if job.attempt >= configuration.retry.maxAttempts {
                return .dead(reason: "gave up after \(job.attempt) attempts: \(reason)")
            }
            let delay = after ?? configuration.retry.delay(afterAttempt: job.attempt, jitter: Double.random(in: 0..<1))
            return .retry(at: clock.now().adding(delay), reason: reason)
        }
    }
}
