import Clocks
import Domain
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Settings of the runner.
public struct JobRunnerConfiguration: Sendable {
    /// A claimed job is this runner's for this long, renewed every third of it while the attempt runs;
    /// another runner may take it once the lease ran out (a crashed process).
    public var leaseDuration: Duration = .seconds(30)
    /// Jobs run at once by this process.
    public var concurrency: Int = 32
    /// Longest sleep without a wake-up (a safety net; commits wake the runner at once).
    public var idlePoll: Duration = .seconds(5)
    /// How often recording an outcome is tried before the job is set aside.
    public var completionAttempts = 3
    /// First pause after a failed claim (doubling to `maxClaimBackoff`), so a
    /// failing store is not hammered and the log gets one line per streak.
    public var claimBackoff: Duration = .milliseconds(100)
    /// The longest pause between tries of a failing store call.
    public var maxClaimBackoff: Duration = .seconds(10)

    /// Waits between tries of a failing store call (a claim, recording an
    /// outcome): doubling from `claimBackoff` up to `maxClaimBackoff`, without
    /// jitter (there is one runner per lane, nothing to spread).
    var storeBackoff: RetryPolicy { RetryPolicy(firstDelay: claimBackoff, maxDelay: maxClaimBackoff) }

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
    /// Signalled by commits that create jobs and by finished attempts.
    public let wakeup = Wakeup()
    /// Names this runner's leases (host:pid, plus the lane).
    public let owner: String
    let jobsFinished: Counter?
    let inFlight = Atomic<Int>(0)
    /// Claims step aside while webhooks queue up (never for long).
    let pressure: (any IngestPressure)?

    /// `executors` by kind (a job of another kind is held); `pressure` makes claims give way to webhooks.
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

    /// Attempts that ended and wait to be recorded by the claim loop, which
    /// records them in the write that refills their slots.
    let finished = Mutex<[Finished]>([])

    /// An ended attempt: the job, its recorded end, and its logger (with the job's metadata).
    struct Finished: Sendable {
        var job: ClaimedJob
        var completion: JobCompletion
        var logger: Logger
    }

    /// Claims and runs until a graceful shutdown, which lets running attempts finish, then
    /// releases the leases this runner still holds.
    ///
    /// One loop claims: each round records the attempts that ended since the
    /// last one and claims jobs for the slots they and any idle ones leave, in
    /// one store write (`completeAndClaim`); a job's cycle costs one write, and
    /// jobs that end together are recorded together.
    public func run() async throws {
        logger.info("job runner started", metadata: ["owner": "\(owner)"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                var failedClaims = 0
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let ended = takeFinished()
                    // Ended attempts still hold their slots until recorded, here.
                    let free = configuration.concurrency - inFlight.load(ordering: .acquiring) + ended.count
                    var claimed: [ClaimedJob] = []
                    var claimedAt = clock.now()
                    if free > 0 {
                        // Outcomes are recorded at once; claims give way while webhooks
                        // crowd the writer (then this round records only, and the next
                        // one waits before it claims).
                        let limit = !ended.isEmpty && (pressure?.isHigh ?? false) ? 0 : free
                        if ended.isEmpty {
                            await configuration.yield.wait(for: pressure, on: clock)
                            // Nothing to record: write only if there may be something to claim.
                            let now = clock.now()
                            if !((try? await store.mayHaveWork(lane: configuration.lane, now: now)) ?? true) {
                                await waitForWork(after: now)
                                continue
                            }
                        }
                        do {
                            let now = clock.now()
                            claimedAt = now
                            let claim = try await store.completeAndClaim(
                                ended.map { FinishedAttempt(jobID: $0.job.id, completion: $0.completion) }, owner: owner, now: now,
                                limit: limit, leaseUntil: now.adding(configuration.leaseDuration), lane: configuration.lane)
                            claimed = claim.jobs
                            for attempt in ended { recorded(attempt) }
                            for setAside in claim.setAside {
                                // Once per job: it is out of the queue now, and every other job goes on.
                                logger.error(
                                    "ALERT job set aside: the store could not claim it",
                                    metadata: [
                                        "job": "\(setAside.jobID)", "mapping": "\(setAside.mapping)", "reason": "\(setAside.reason)",
                                    ])
                            }
                            if failedClaims > 0 {
                                logger.notice("claiming jobs works again", metadata: ["failed_claims": "\(failedClaims)"])
                                failedClaims = 0
                            }
                        } catch {
                            if !ended.isEmpty {
                                await recordOneByOne(ended)  // then claim again
                                continue
                            }
                            failedClaims += 1
                            if failedClaims == 1 {
                                logger.error(
                                    "claiming jobs failed; retrying with backoff", metadata: ["error": "\(Redactor.redactPatterns("\(error)"))"])
                            }
                            try? await clock.sleep(for: configuration.storeBackoff.delay(afterAttempt: failedClaims, jitter: 1))
                            continue
                        }
                        inFlight.subtract(ended.count, ordering: .acquiringAndReleasing)
                    }
                    for job in claimed {
                        inFlight.add(1, ordering: .acquiringAndReleasing)
                        group.addTask {
                            await self.finish(job)
                            self.wakeup.signal()
                        }
                    }
                    if !ended.isEmpty && claimed.isEmpty && free > 0 && inFlight.load(ordering: .acquiring) < configuration.concurrency {
                        continue  // recorded only: claim in the next round
                    }
                    if free <= 0 || claimed.count == free {
                        // Saturated: a finishing job signals the wake-up.
                        await wakeup.wait()
                    } else {
                        // The claim took all it could: what is due now and was left
                        // (its mapping at its limit, an older job of its entity
                        // unfinished) waits for a finishing job or a commit, never
                        // for a spinning claim.
                        await waitForWork(after: claimedAt)
                    }
                }
                // Leaving the group waits for in-flight attempts: a graceful stop lets them finish.
            }
            // Attempts that ended after the last round.
            await recordOneByOne(takeFinished())
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

    /// Hands a job that was created already ended (see
    /// `JobExecutor.endedAtCreation`) to the executor of its kind, so its
    /// target counts and alerts it as after an attempt.
    public func reportEndedAtCreation(_ job: PlannedJob, logger: Logger) {
        executors[job.kind]?.endedAtCreation(job, logger: logger)
    }

    /// A routed job as its executor prepares it for creation (see `JobExecutor.prepareAtCreation`).
    public func prepareAtCreation(_ job: PlannedJob) -> PlannedJob {
        guard let executor = executors[job.kind] else { return job }
        var prepared = job
        executor.prepareAtCreation(&prepared)
        return prepared
    }

    /// Runs the attempt and queues its end for the claim loop to record.
    func finish(_ job: ClaimedJob) async {
        let (completion, logger) = await attemptAndDecide(job)
        finished.withLock { $0.append(Finished(job: job, completion: completion, logger: logger)) }
    }

    /// The attempts that ended since the last call, in the order they ended.
    private func takeFinished() -> [Finished] {
        finished.withLock { ended in
            defer { ended.removeAll() }
            return ended
        }
    }

    /// Records each on its own (retried, else set aside: `record`) and frees its slot.
    private func recordOneByOne(_ ended: [Finished]) async {
        for attempt in ended {
            await record(attempt.completion, of: attempt.job, logger: attempt.logger)
            recorded(attempt)
        }
        inFlight.subtract(ended.count, ordering: .acquiringAndReleasing)
    }

    /// After recording: the executor's own reaction and the counter.
    private func recorded(_ attempt: Finished) {
        executors[attempt.job.kind]?.recorded(attempt.completion, for: attempt.job, logger: attempt.logger)
        jobsFinished?.increment()
    }

    /// Sleeps until a commit, a finished job, the next due time or lease expiry
    /// after the claim at `claimedAt`, or the poll interval, whichever comes first.
    private func waitForWork(after claimedAt: Timestamp) async {
        let next = (try? await store.nextWakeUp(lane: configuration.lane, after: claimedAt)) ?? nil
        let cap = clock.now().adding(configuration.idlePoll)
        let deadline = next.map { min($0, cap) } ?? cap
        if deadline <= clock.now() { return }
        await wakeup.wait(until: deadline, on: clock)
    }

    /// The attempt and the decision on it, logged; not yet recorded.
    func attemptAndDecide(_ job: ClaimedJob) async -> (JobCompletion, Logger) {
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "mapping"] = "\(job.mapping)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        let completion: JobCompletion
        if let executor = executors[job.kind] {
            let outcome = await attempt(job, with: executor, logger: logger)
            completion = decide(outcome, job: job, rules: executor.retryRules(for: job))
        } else {
            completion = .held(.noExecutor(kind: job.kind))
        }
        report(completion, logger: logger)
        return (completion, logger)
    }

    /// Runs the executor while a sibling task renews the job's lease every
    /// third of its duration; the renewal stops when the attempt ends (a
    /// failed renewal is tried again at the next interval, never ends the attempt).
    private func attempt(_ job: ClaimedJob, with executor: any JobExecutor, logger: Logger) async -> AttemptOutcome {
        await withTaskGroup(of: AttemptOutcome?.self) { group in
            group.addTask { [store, clock, owner, configuration] in
                while !Task.isCancelled {
                    do {
                        try await clock.sleep(for: configuration.leaseDuration / 3)
                    } catch {
                        return nil  // cancelled: the attempt ended
                    }
                    // A failed renewal (a busy store) is tried again a third of a lease later.
                    try? await store.renewLeases(jobIDs: [job.id], owner: owner, until: clock.now().adding(configuration.leaseDuration))
                }
                return nil
            }
            group.addTask { await executor.execute(job, logger: logger) }
            while let finished = await group.next() {
                if let outcome = finished {
                    group.cancelAll()
                    return outcome
                }
            }
            return .transient(reason: "the attempt ended without an outcome", retryAfter: nil)
        }
    }

    /// The one retry decision, and redaction of every reason before it is
    /// stored or logged: by the values the job itself sent, and by pattern.
    func decide(_ outcome: AttemptOutcome, job: ClaimedJob, rules: RetryRules) -> JobCompletion {
        let now = clock.now()
        let decided = RetryDecision.decide(
            outcome, rules: rules, attempt: job.attempt, firstAttemptAt: job.firstAttemptAt ?? job.createdAt ?? now,
            now: now, jitter: Double.random(in: 0..<1))
        // The payload is parsed for its values only when a reason is to be
        // stored (never for a success, the common case, nor for a hold).
        switch decided {
        case .done, .held, .postponed: return decided
        case .retry(let at, let reason): return .retry(at: at, reason: Redactor(payload: job.payload).redact(reason))
        case .dead(let reason): return .dead(reason: Redactor(payload: job.payload).redact(reason))
        case .expired(let reason): return .expired(reason: Redactor(payload: job.payload).redact(reason))
        }
    }

    /// One log line per attempt that did not succeed, naming the mapping (in
    /// the metadata) and the (redacted) reason.
    func report(_ completion: JobCompletion, logger: Logger) {
        switch completion {
        case .done: break
        case .retry(let at, let reason):
            logger.warning("job attempt failed; will retry", metadata: ["reason": "\(reason)", "retry_at": "\(at)"])
        case .dead(let reason):
            logger.error("job failed for good (dead)", metadata: ["reason": "\(reason)"])
        case .expired(let reason):
            logger.error("ALERT job expired before its effect could happen", metadata: ["reason": "\(reason)"])
        case .held(let hold):
            logger.warning("job held", metadata: ["reason": "\(hold)"])
        case .postponed(let until, let reason):
            logger.debug("job postponed: its downstream is paused", metadata: ["reason": "\(reason)", "until": "\(until)"])
        }
    }

    /// Records the outcome, a few times if the store fails; a job whose outcome
    /// cannot be recorded is set aside so it cannot block the queue (its lease
    /// would otherwise run out and the same failure repeat forever).
    func record(_ completion: JobCompletion, of job: ClaimedJob, logger: Logger) async {
        var lastError: (any Error)?
        for attempt in 1...max(configuration.completionAttempts, 1) {
            do {
                try await store.complete(jobID: job.id, owner: owner, completion: completion, now: clock.now())
                return
            } catch {
                lastError = error
                if attempt < configuration.completionAttempts {
                    try? await clock.sleep(for: configuration.storeBackoff.delay(afterAttempt: attempt, jitter: 1))
                }
            }
        }
        let reason =
            "recording the outcome failed \(configuration.completionAttempts) times: \(Redactor.redactPatterns("\(lastError.map { "\($0)" } ?? "?")"))"
        do {
            try await store.setAside(jobID: job.id, owner: owner, reason: reason, now: clock.now())
            logger.error("ALERT job set aside: its outcome could not be recorded", metadata: ["reason": "\(reason)"])
        } catch {
            // Not recorded at all: the lease runs out and the crash policy decides.
            logger.error("recording job outcome failed", metadata: ["error": "\(Redactor.redactPatterns("\(error)"))"])
        }
    }
}
