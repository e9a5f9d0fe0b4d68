import Domain
import Foundation
import GRDB
import Logging
import Synchronization

/// The single writer of the store, with group commit.
///
/// Webhooks and every other write (routing, job claims and completions, CSV
/// staging, operator commands) queue here, in two queues; one thread takes
/// what queued during the previous commit and writes it in one transaction,
/// so concurrent work shares one fsync. Webhooks go first, in a commit of
/// their own; job work follows in separate commits, cut to a time budget
/// while webhooks wait, so no acknowledgement waits behind it. One bad item
/// never fails the batch: a failed batch is replayed with a savepoint per
/// operation. A dedicated thread (not the cooperative pool) blocks on SQLite,
/// as GRDB's synchronous API requires.
final class StoreWriter: @unchecked Sendable {
    struct Closed: Error, CustomStringConvertible {
        var description: String { "store is closed" }
    }

    // All mutable state below is guarded by `condition`.
    private let condition = NSCondition()
    /// Webhooks waiting for a commit; they never queue behind job work.
    private var pendingIngestOps: [any WriterOperation] = []
    /// Job bookkeeping and every other write, waiting for a commit, in arrival order.
    private var pendingJobOps: [any WriterOperation] = []
    /// Callers waiting for a checkpoint finished between two commits (one
    /// checkpoint answers all of them).
    private var pendingCheckpoints: [CheckedContinuation<WALProgress, any Error>] = []
    private var stopping = false
    private var finished = false
    /// Whether `start()` ran: a writer that never started has no thread to wait for.
    private var started = false
    private var healthy = true
    private var thread: Thread?

    /// The connection the writer commits on (owned here; reopened after an I/O error).
    let connection: WriterConnection
    let capacity: Int
    let maxBatch: Int
    let logger: Logger
    /// Called after commits: the runner's and the router's wake-ups.
    let commitHandlers = Mutex(CommitHandlers())

    init(connection: WriterConnection, capacity: Int, maxBatch: Int, logger: Logger) {
        self.connection = connection
        self.capacity = capacity
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// False after a failed commit or a storage failure, until a commit succeeds cleanly.
    var isHealthy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return healthy && !stopping
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "store-writer"
        condition.lock()
        self.thread = thread
        started = true
        condition.unlock()
        thread.start()
    }

    /// Queues a webhook for the next commit; `apply` inserts it inside the transaction.
    /// Never throws: refused as `.unavailable` while stopping or when `capacity`
    /// webhooks already wait, and a failed commit is `.unavailable` too.
    func submit(_ apply: @escaping @Sendable (Database, inout CommitEffects) throws -> IngestOutcome) async -> IngestOutcome {
        await withCheckedContinuation { continuation in
            condition.lock()
            if stopping || pendingIngestOps.count >= capacity {
                let reason = stopping ? "shutting down" : "ingest queue full"
                condition.unlock()
                continuation.resume(returning: .unavailable(reason: reason))
                return
            }
            // A webhook is never thrown at: a failure is `unavailable` (503).
            pendingIngestOps.append(
                PendingWrite(isIngest: true, body: apply) { result in
                    continuation.resume(returning: (try? result.get()) ?? .unavailable(reason: result.failureReason))
                })
            condition.signal()
            condition.unlock()
        }
    }

    /// Runs `body` inside the writer's next job commit and returns its result:
    /// every write that is not a webhook goes through here. `body` may run
    /// twice (a failed batch is replayed operation by operation), so it must
    /// only touch the database.
    func perform<Value: Sendable>(_ body: @escaping @Sendable (Database, inout CommitEffects) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(PendingWrite(body: body) { continuation.resume(with: $0) })
        }
    }

    /// `perform` for callers that are on a thread allowed to block (the
    /// blocking-I/O pool's CSV export, the CLI's main thread), never on the
    /// cooperative pool: waits for the commit that carries `body`.
    func performAndWait<Value: Sendable>(_ body: @escaping @Sendable (Database, inout CommitEffects) throws -> Value) throws -> Value {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Swift.Result<Value, any Error>>(.failure(Closed()))
        enqueue(
            PendingWrite(body: body) { result in
                outcome.withLock { $0 = result }
                done.signal()
            })
        done.wait()
        return try outcome.withLock { $0 }.get()
    }

    /// Copies the WAL's last frames into the database file between two
    /// commits. Here, with no commit in flight, a checkpoint can reach the
    /// WAL's end, so the next commit starts the WAL over instead of growing it.
    func finishCheckpoint() async throws -> WALProgress {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(throwing: Closed())
                return
            }
            pendingCheckpoints.append(continuation)
            condition.signal()
            condition.unlock()
        }
    }

    private func runCheckpoints(_ waiting: [CheckedContinuation<WALProgress, any Error>]) {
        guard !waiting.isEmpty else { return }
        let result = Swift.Result { () throws -> WALProgress in
            try connection.database.writeWithoutTransaction { db in try WALProgress.checkpoint(db) }
        }
        for continuation in waiting { continuation.resume(with: result) }
    }

    private func enqueue(_ operation: any WriterOperation) {
        condition.lock()
        if stopping {
            condition.unlock()
            operation.fail(Closed())
            return
        }
        pendingJobOps.append(operation)
        condition.signal()
        condition.unlock()
    }

    /// Commits what is queued, refuses anything new, and waits for the thread
    /// (unless called on it, which only a commit handler could do). Idempotent.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        let onWriterThread = thread.map { $0 == Thread.current } ?? false
        while started && !finished && !onWriterThread { condition.wait() }
        condition.unlock()
    }

    /// When webhooks last queued up for a commit (see `IngestPressure`).
    private let lastCrowdedIngest = Mutex<ContinuousClock.Instant?>(nil)
    /// A batch this large means webhooks arrive faster than commits complete.
    static let crowdedBatch = 4
    /// How long a crowded commit keeps the pressure signal up.
    static let pressureWindow: Duration = .milliseconds(100)

    var lastCrowdedIngestAt: ContinuousClock.Instant? { lastCrowdedIngest.withLock { $0 } }

    var isUnderIngestPressure: Bool {
        guard let last = lastCrowdedIngestAt else { return false }
        return ContinuousClock.now - last < StoreWriter.pressureWindow
    }

    private func run() {
        var roundsWithoutJobWork = 0
        while true {
            condition.lock()
            while pendingIngestOps.isEmpty && pendingJobOps.isEmpty && pendingCheckpoints.isEmpty && !stopping { condition.wait() }
            let checkpoints = pendingCheckpoints
            pendingCheckpoints.removeAll()
            if pendingIngestOps.isEmpty && pendingJobOps.isEmpty && stopping {
                condition.unlock()
                runCheckpoints(checkpoints)
                condition.lock()
                finished = true
                // The Thread holds this writer through its closure: letting go of
                // it here breaks the cycle, so the writer is freed with its store.
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let ingests = Array(pendingIngestOps.prefix(maxBatch))
            pendingIngestOps.removeFirst(ingests.count)
            let crowded = ingests.count >= StoreWriter.crowdedBatch || !pendingIngestOps.isEmpty
            condition.unlock()
            if crowded { lastCrowdedIngest.withLock { $0 = ContinuousClock.now } }
            runCheckpoints(checkpoints)

            // Webhooks are acknowledged first, in a commit of their own. Job
            // bookkeeping (routing, claims, completions, staging) waits while
            // webhooks keep coming (a few rounds at most, so it never starves),
            // then gets a commit of its own cut to a time budget, so no
            // acknowledgement waits behind a long job commit.
            if !ingests.isEmpty {
                deliver(commit(ingests), for: ingests)
            }
            condition.lock()
            let webhooksWaiting = !pendingIngestOps.isEmpty
            if pendingJobOps.isEmpty || (webhooksWaiting && roundsWithoutJobWork < StoreWriter.maxRoundsWithoutJobWork) {
                if !pendingJobOps.isEmpty { roundsWithoutJobWork += 1 }
                condition.unlock()
                continue
            }
            let jobWork = Array(pendingJobOps.prefix(maxBatch))
            pendingJobOps.removeFirst(jobWork.count)
            condition.unlock()
            roundsWithoutJobWork = 0
            let results = commit(jobWork, budget: webhooksWaiting ? StoreWriter.jobBudgetUnderLoad : StoreWriter.jobBudget)
            deliver(results, for: jobWork)  // pairs only the operations the budget took
            if results.count < jobWork.count {
                condition.lock()
                pendingJobOps.insert(contentsOf: jobWork[results.count...], at: 0)
                condition.unlock()
            }
        }
    }

    /// Webhook commits in a row before job work must get a commit.
    static let maxRoundsWithoutJobWork = 8
    /// How long one job commit may run while webhooks wait, and otherwise
    /// (a webhook arriving meanwhile waits at most this long).
    static let jobBudgetUnderLoad: Duration = .microseconds(500)
    static let jobBudget: Duration = .milliseconds(5)

    private func deliver(_ results: [Swift.Result<Void, any Error>], for operations: [any WriterOperation]) {
        for (operation, result) in zip(operations, results) {
            switch result {
            case .success: operation.succeed()
            case .failure(let error): operation.fail(error)
            }
        }
    }

    /// Commits a batch. The fast path runs every operation in one plain
    /// transaction; only if one of them fails is the batch rolled back and
    /// replayed with a savepoint per operation, so that the failure stays its own.
    /// With a `budget`, stops taking operations once it is spent (always
    /// doing at least one): the results then cover a prefix of the batch.
    private func commit(_ batch: [any WriterOperation], budget: Duration? = nil) -> [Swift.Result<Void, any Error>] {
        var effects = CommitEffects()
        var applied = 0
        do {
            let started = ContinuousClock.now
            try connection.database.write { db in
                applied = 0
                effects = CommitEffects()
                for operation in batch {
                    if let budget, applied > 0, ContinuousClock.now - started > budget { break }
                    try operation.apply(db, &effects)
                    applied += 1
                }
            }
            updateHealth(batch, storageFailure: false)
            announce(effects)
            return Array(repeating: .success(()), count: applied)
        } catch {
            // Replay under a savepoint each, so the failure stays its own. A
            // budgeted (job) batch replays what the failed transaction had taken,
            // up to the failing operation: the caller re-queues the rest. A
            // webhook batch replays whole: every webhook in it must be answered.
            let subset = budget == nil ? batch : Array(batch.prefix(min(applied + 1, batch.count)))
            return commitIsolatingFailures(subset)
        }
    }

    private func commitIsolatingFailures(_ batch: [any WriterOperation]) -> [Swift.Result<Void, any Error>] {
        var results = [Swift.Result<Void, any Error>](repeating: .failure(Closed()), count: batch.count)
        var storageFailure = false
        var effects = CommitEffects()
        do {
            try connection.database.write { db in
                effects = CommitEffects()
                for (index, operation) in batch.enumerated() {
                    do {
                        try db.inSavepoint {
                            try operation.apply(db, &effects)
                            return .commit
                        }
                        results[index] = .success(())
                    } catch {
                        storageFailure = storageFailure || StoreWriter.isStorageFailure(error)
                        results[index] = .failure(error)
                        if operation.isIngest {
                            logger.error("webhook not stored", metadata: ["error": "\(StoreWriter.reason(error))"])
                        }
                    }
                }
            }
            // A full or failing volume fails items one by one inside a committed
            // transaction; it still means the store cannot accept webhooks.
            updateHealth(batch, storageFailure: storageFailure)
            announce(effects)
            return results
        } catch {
            // The transaction did not commit: nothing in it may be acknowledged.
            logger.error("store commit failed", metadata: ["error": "\(StoreWriter.reason(error))", "batch": "\(batch.count)"])
            setHealthy(false)
            if let dbError = error as? DatabaseError, dbError.resultCode == .SQLITE_IOERR || dbError.resultCode == .SQLITE_CORRUPT {
                connection.reopen(logger: logger)
            }
            return batch.map { _ in .failure(error) }
        }
    }

    /// Wakes whoever waits for what a commit brought (on the writer thread).
    func announce(_ effects: CommitEffects) {
        let handlers = commitHandlers.withLock { $0 }
        if effects.createdJobs { handlers.jobsCommitted?() }
        if effects.queuedEvents { handlers.eventsQueued?() }
    }

    /// Health speaks of webhooks: only a batch that stored one clears a
    /// failure (job bookkeeping may fit where a 4 KB body no longer does).
    private func updateHealth(_ batch: [any WriterOperation], storageFailure: Bool) {
        if storageFailure {
            setHealthy(false)
        } else if batch.contains(where: \.isIngest) {
            setHealthy(true)
        }
    }

    private func setHealthy(_ value: Bool) {
        condition.lock()
        healthy = value
        condition.unlock()
    }

    static func isStorageFailure(_ error: any Error) -> Bool {
        guard let dbError = error as? DatabaseError else { return false }
        switch dbError.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_NOMEM, .SQLITE_CORRUPT, .SQLITE_BUSY:
            return true
        default:
            return false
        }
    }

    /// The SQLite error without SQL text or arguments (they may hold personal data).
    static func reason(_ error: any Error) -> String {
        if let dbError = error as? DatabaseError {
            return "sqlite: \(dbError.resultCode): \(dbError.message ?? "")"
        }
        return "\(type(of: error))"
    }
}

/// What a commit did that others wait for.
struct CommitEffects {
    var createdJobs = false
    var queuedEvents = false
}

/// The wake-ups called after a commit.
///
/// A struct on purpose: a bare optional closure as a `Mutex` value is kept
/// in its generic (reabstracted) form, and reading it through the `inout`
/// of `withLock` writes back a closure wrapped in two more thunks on every
/// call: each call then gets slower and the chain finally overflows the
/// writer thread's stack. A closure stored in a concrete struct field is
/// read without reabstraction (`CommitHandlersTests`).
struct CommitHandlers: Sendable {
    /// After a commit that created jobs.
    var jobsCommitted: (@Sendable () -> Void)?
    /// After a commit that queued events for routing.
    var eventsQueued: (@Sendable () -> Void)?
}

/// One write waiting for the writer. Each carries its own result: the writer
/// knows nothing of what its operations do.
protocol WriterOperation: AnyObject {
    var isIngest: Bool { get }
    /// Runs inside the transaction (again, if a failed batch is replayed).
    func apply(_ db: Database, _ effects: inout CommitEffects) throws
    /// The transaction committed: hand the result over.
    func succeed()
    func fail(_ error: any Error)
}

/// A write with a result of type `Value`, handed to `deliver` once its
/// transaction committed (or failed): an async continuation, a webhook's
/// answer, or a blocked caller's semaphore.
final class PendingWrite<Value: Sendable>: WriterOperation {
    let isIngest: Bool
    let body: @Sendable (Database, inout CommitEffects) throws -> Value
    let deliver: @Sendable (Swift.Result<Value, any Error>) -> Void
    private var value: Value?

    init(
        isIngest: Bool = false, body: @escaping @Sendable (Database, inout CommitEffects) throws -> Value,
        deliver: @escaping @Sendable (Swift.Result<Value, any Error>) -> Void
    ) {
        self.isIngest = isIngest
        self.body = body
        self.deliver = deliver
    }

    func apply(_ db: Database, _ effects: inout CommitEffects) throws {
        value = try body(db, &effects)
    }

    func succeed() {
        deliver(value.map { .success($0) } ?? .failure(StoreWriter.Closed()))
    }

    func fail(_ error: any Error) {
        deliver(.failure(error))
    }
}

extension Swift.Result where Failure == any Error {
    /// The error without SQL text or arguments (see `StoreWriter.reason`).
    var failureReason: String {
        if case .failure(let error) = self { return StoreWriter.reason(error) }
        return "internal: no outcome"
    }
}

/// The writer's connection, reopened after an I/O error.
final class WriterConnection: Sendable {
    let path: String
    let options: SQLiteStoreOptions
    private let queue: Mutex<DatabaseQueue>

    init(path: String, options: SQLiteStoreOptions) throws {
        self.path = path
        self.options = options
        self.queue = Mutex(try SQLiteStore.openQueue(path: path, options: options))
    }

    var database: DatabaseQueue { queue.withLock { $0 } }

    /// After an I/O error the connection may be unusable: open a fresh one.
    func reopen(logger: Logger) {
        do {
            let fresh = try SQLiteStore.openQueue(path: path, options: options)
            queue.withLock { $0 = fresh }
            logger.notice("store reopened after an I/O error")
        } catch {
            logger.error("store reopen failed", metadata: ["error": "\(error)"])
        }
    }
}
