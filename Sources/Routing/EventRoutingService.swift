import Foundation
import JSON
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
import Clocks
import Domain
#endif

/// Creates the jobs of acknowledged events: reads the routing queue in
/// arrival order, evaluates the mappings on a low-priority thread and commits
/// each batch's jobs with its dequeueing.
///
/// Acknowledging a webhook therefore waits only for its own row; mapping
/// evaluation, the bulk of a webhook's CPU cost, yields to webhooks under load
/// and catches up right after. A company/signup is routed before the events
/// that followed it, so mappings see the company as it was when they arrived.
public final class EventRoutingService: Service {
    let queue: any RoutingQueue
    let router: any EventRouter
    let logger: Logger
    let batchSize: Int
    let idlePoll: Duration
    /// Routing steps aside while webhooks queue up (never for long).
    let pressure: (any IngestPressure)?
    let yield: BackgroundYield
    /// Paces the waits (idle poll, giving way, retry after a failed commit).
    let clock: any WallClock
    /// Signalled when the store commits events that need routing.
    public let wakeup = Wakeup()
    let worker = BackgroundWorker(name: "event-router")
    /// Told, after their commit, of the jobs created `expired` (their deadline
    /// had passed when the event arrived), so their target counts and alerts
    /// them as it would after an attempt; the logger carries the event id and
    /// the mapping.
    let endedAtCreation: @Sendable (_ job: PlannedJob, _ logger: Logger) -> Void
    /// Each planned job as its executor prepares it for creation (a CSV row
    /// staged by the routing write itself: `JobExecutor.prepareAtCreation`).
    let prepareAtCreation: @Sendable (_ job: PlannedJob) -> PlannedJob

    /// `batchSize` events per round; `idlePoll` is the safety net when no signal comes.
    public init(
        queue: any RoutingQueue, router: any EventRouter, logger: Logger, batchSize: Int = 8, idlePoll: Duration = .seconds(1),
        pressure: (any IngestPressure)? = nil, yield: BackgroundYield = BackgroundYield(),
        clock: any WallClock = SystemWallClock(),
        endedAtCreation: @escaping @Sendable (_ job: PlannedJob, _ logger: Logger) -> Void = { _, _ in },
        prepareAtCreation: @escaping @Sendable (_ job: PlannedJob) -> PlannedJob = { $0 }
    ) {
        self.prepareAtCreation = prepareAtCreation
        self.endedAtCreation = endedAtCreation
        self.queue = queue
        self.router = router
        self.logger = logger
        self.batchSize = batchSize
        self.idlePoll = idlePoll
        self.pressure = pressure
        self.yield = yield
        self.clock = clock
    }

    /// Routes committed events until a graceful shutdown; a failing round is logged and retried.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await yield.wait(for: pressure, on: clock)
                let routed = await routeOnce()
                if routed == 0 { await idle() }
            }
        } onGracefulShutdown: {
            self.wakeup.signal()
        }
        worker.stop()
    }

    /// Routes one batch; returns how many events it routed.
    @discardableResult
    public func routeOnce() async -> Int {
        let events: [UnroutedEvent]
        do {
            events = try await queue.unroutedEvents(limit: batchSize)
        } catch {
            logger.error("reading the routing queue failed", metadata: ["error": "\(error)"])
            return 0
        }
        guard !events.isEmpty else { return 0 }
        let router = self.router
        let logger = self.logger
        let prepare = self.prepareAtCreation
        let routedAt = clock.now()
        let routed = await worker.run { () -> [RoutedEvent] in
            events.map { event -> RoutedEvent in
                let envelope = event.envelope
                let jobs: [PlannedJob]
                if let body = event.body {
                    jobs = router.route(envelope, body: body, receivedAt: event.receivedAt, eventID: event.id).map(prepare)
                    for job in jobs where job.initialState == .dead {
                        // Kept `dead` with its reason (replayable once the mapping is fixed); said once, here.
                        logger.error(
                            "job dead at creation: the mapping could not render the event",
                            metadata: [
                                "event": "\(event.id)", "mapping": "\(job.mapping)",
                                "reason": "\(Redactor.redactPatterns(job.reason ?? "?"))",
                            ])
                    }
                } else {
                    // Without a body (erased) there is nothing to plan. It still leaves
                    // the queue, so it never blocks the events behind it.
                    logger.error("event cannot be routed: body missing", metadata: ["event": "\(event.id)"])
                    jobs = []
                }
                return RoutedEvent(
                    eventID: event.id, companyID: envelope.companyID, subjectID: envelope.subjectID,
                    receivedAt: event.receivedAt, jobs: jobs, routedAt: routedAt)
            }
        }
        do {
            let created = try await queue.recordRouting(routed)
            logger.debug("events routed", metadata: ["events": "\(events.count)", "jobs": "\(created)"])
            for event in routed {
                for job in event.jobs where job.initialState == .expired {
                    var logger = logger
                    logger[metadataKey: "event"] = "\(event.eventID)"
                    logger[metadataKey: "mapping"] = "\(job.mapping)"
                    endedAtCreation(job, logger)
                }
            }
        } catch {
            logger.error("recording routed jobs failed (retried)", metadata: ["error": "\(error)"])
            try? await clock.sleep(for: .milliseconds(200))
            return 0
        }
        return events.count
    }

    private func idle() async {
        await wakeup.wait(until: clock.now().adding(idlePoll), on: clock)
    }
}

/// One thread at a lower scheduling priority (nice 10) for CPU work that must
/// yield to request handling under load. Linux keeps a nice value per thread.
///
/// The thread ends after `stop()`, or when the worker is dropped: it holds
/// only the queue, never the worker.
final class BackgroundWorker: Sendable {
    private let queue = WorkQueue()

    init(name: String, nice: Int32 = 10) {
        let thread = Thread { [queue] in
            #if canImport(Glibc)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)  // who = 0: this thread on Linux
            #endif
            queue.drain()
        }
        thread.name = name
        thread.start()
    }

    deinit {
        queue.stop()
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.add { continuation.resume(returning: body()) }
        }
    }

    /// Lets queued work finish, then ends the thread.
    func stop() {
        queue.stop()
    }
}

/// The worker's queue: work items in order, and whether to stop once empty.
private final class WorkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var stopping = false

    /// Queues `item`; once stopped (the thread is gone or going), runs it on the caller.
    func add(_ item: @escaping @Sendable () -> Void) {
        condition.lock()
        if stopping {
            condition.unlock()
            item()
            return
        }
        work.append(item)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Runs items until stopped and empty (the worker thread's body).
    func drain() {
        while true {
            condition.lock()
            while work.isEmpty && !stopping { condition.wait() }
            if work.isEmpty && stopping {
                condition.unlock()
                return
            }
            let next = work.removeFirst()
            condition.unlock()
            next()
        }
    }
}
