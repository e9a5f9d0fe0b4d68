import BridgeCore
import Foundation
import GRDB
import Logging
import Synchronization

/// The single writer of the store, with group commit.
///
/// Webhooks, job claims and job completions queue here; one thread takes
/// everything that queued during the previous commit and writes it in one
/// transaction, so concurrent work shares one fsync (a job's claim and outcome
/// ride along with the webhooks' commits instead of paying their own). Each
/// operation runs under its own savepoint: one bad item never fails the batch.
/// A dedicated thread (not the cooperative pool) blocks on SQLite, as GRDB's
/// synchronous API requires.
final class StoreWriter: @unchecked Sendable {
    enum Operation {
        case ingest(IngestItem, hash: Data, CheckedContinuation<IngestOutcome, Never>)
        case claim(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane, CheckedContinuation<[ClaimedJob], any Error>)
        case complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp, CheckedContinuation<Void, any Error>)
        case stage(StagingRequest, CheckedContinuation<StagingOutcome, any Error>)
        case route([RoutedEvent], CheckedContinuation<Int, any Error>)

        var isIngest: Bool {
            if case .ingest = self { return true }
            return false
        }
    }

    enum Result {
        case ingest(IngestOutcome)
        case claim([ClaimedJob])
        case complete
        case stage(StagingOutcome)
        case route(Int)
        case failed(any Error)
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "store is closed" }
    }

    // All mutable state below is guarded by `condition`.
    private let condition = NSCondition()
    /// Webhooks waiting for a commit; they never queue behind job work.
    private var pendingIngestOps: [Operation] = []
    /// Job bookkeeping waiting for a commit, in arrival order.
    private var pendingJobOps: [Operation] = []
    /// Callers waiting for a checkpoint finished between two commits (one
    /// checkpoint answers all of them).
    private var pendingCheckpoints: [CheckedContinuation<WALProgress, any Error>] = []
    private var stopping = false
    private var finished = false
    private var healthy = true
    private var thread: Thread?
    weak var store: SQLiteStore?

    let capacity: Int
    let maxBatch: Int
    let logger: Logger

    init(capacity: Int, maxBatch: Int, logger: Logger) {
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
        self.thread = thread
        thread.start()
    }

    func submit(_ item: IngestItem, hash: Data) async -> IngestOutcome {
        await withCheckedContinuation { continuation in
            condition.lock()
            if stopping || pendingIngestOps.count >= capacity {
                let reason = stopping ? "shutting down" : "ingest queue full"
                condition.unlock()
                continuation.resume(returning: .unavailable(reason: reason))
                return
            }
            pendingIngestOps.append(.ingest(item, hash: hash, continuation))
            condition.signal()
            condition.unlock()
        }
    }

    func claim(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane) async throws -> [ClaimedJob] {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.claim(owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: lane, continuation))
        }
    }

    func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enqueue(.complete(jobID: jobID, owner: owner, completion: completion, now: now, continuation))
        }
    }

    func route(_ events: [RoutedEvent]) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.route(events, continuation))
        }
    }

    func stage(_ request: StagingRequest) async throws -> StagingOutcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.stage(request, continuation))
        }
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
            guard let store else { throw Closed() }
            return try store.database.writeWithoutTransaction { db in try WALProgress.checkpoint(db) }
        }
        for continuation in waiting { continuation.resume(with: result) }
    }

    private func enqueue(_ operation: Operation) {
        condition.lock()
        if stopping {
            condition.unlock()
            StoreWriter.deliver(.failed(Closed()), to: operation)
            return
        }
        pendingJobOps.append(operation)
        condition.signal()
        condition.unlock()
    }

    /// Commits what is queued, refuses anything new, and waits for the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished && thread != nil { condition.wait() }
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
                store = nil
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

    private func deliver(_ results: [Result], for operations: [Operation]) {
        for (operation, result) in zip(operations, results) {
            StoreWriter.deliver(result, to: operation)
        }
    }

    static func deliver(_ result: Result, to operation: Operation) {
        switch (operation, result) {
        case (.ingest(_, _, let continuation), .ingest(let outcome)): continuation.resume(returning: outcome)
        case (.ingest(_, _, let continuation), .failed(let error)): continuation.resume(returning: .unavailable(reason: reason(error)))
        case (.claim(_, _, _, _, _, let continuation), .claim(let jobs)): continuation.resume(returning: jobs)
        case (.complete(_, _, _, _, let continuation), .complete): continuation.resume()
        case (.claim(_, _, _, _, _, let continuation), .failed(let error)): continuation.resume(throwing: error)
        case (.complete(_, _, _, _, let continuation), .failed(let error)): continuation.resume(throwing: error)
        case (.stage(_, let continuation), .stage(let outcome)): continuation.resume(returning: outcome)
        case (.stage(_, let continuation), .failed(let error)): continuation.resume(throwing: error)
        case (.route(_, let continuation), .route(let created)): continuation.resume(returning: created)
        case (.route(_, let continuation), .failed(let error)): continuation.resume(throwing: error)
        default: resumeMismatched(operation)  // safe: results are built per operation kind in commit()
        }
    }

    private static func resumeMismatched(_ operation: Operation) {
        switch operation {
        case .ingest(_, _, let continuation): continuation.resume(returning: .unavailable(reason: "internal: mismatched result"))
        case .claim(_, _, _, _, _, let continuation): continuation.resume(throwing: Closed())
        case .complete(_, _, _, _, let continuation): continuation.resume(throwing: Closed())
        case .stage(_, let continuation): continuation.resume(throwing: Closed())
        case .route(_, let continuation): continuation.resume(throwing: Closed())
        }
    }

    /// What a commit did that others wait for.
    struct CommitEffects {
        var createdJobs = false
        var queuedEvents = false
    }

    /// Applies one operation inside the current transaction.
    private func apply(_ operation: Operation, store: SQLiteStore, db: Database, effects: inout CommitEffects) throws -> Result {
        switch operation {
        case .ingest(let item, let hash, _):
            let outcome = try store.insert(item, hash: hash, db: db)
            if case .stored(_, let jobs) = outcome {
                if jobs > 0 { effects.createdJobs = true }
                if item.routeAfterCommit { effects.queuedEvents = true }
            }
            return .ingest(outcome)
        case .route(let events, _):
            let created = try store.route(events, db: db)
            if created > 0 { effects.createdJobs = true }
            return .route(created)
        case .claim(let owner, let now, let limit, let leaseUntil, let lane, _):
            return .claim(try store.claim(db: db, owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: lane))
        case .complete(let jobID, let owner, let completion, let now, _):
            try store.complete(db: db, jobID: jobID, owner: owner, completion: completion, now: now)
            return .complete
        case .stage(let request, _):
            return .stage(try store.stage(db: db, request))
        }
    }

    /// Commits a batch. The fast path runs every operation in one plain
    /// transaction; only if one of them fails is the batch rolled back and
    /// replayed with a savepoint per operation, so that the failure stays its own.
    /// With a `budget`, stops taking operations once it is spent (always
    /// doing at least one): the results then cover a prefix of the batch.
    private func commit(_ batch: [Operation], budget: Duration? = nil) -> [Result] {
        guard let store else { return batch.map { _ in .failed(Closed()) } }
        var effects = CommitEffects()
        var results: [Result] = []
        results.reserveCapacity(batch.count)
        do {
            let started = ContinuousClock.now
            try store.database.write { db in
                results.removeAll(keepingCapacity: true)
                effects = CommitEffects()
                for operation in batch {
                    if let budget, !results.isEmpty, ContinuousClock.now - started > budget { break }
                    results.append(try apply(operation, store: store, db: db, effects: &effects))
                }
            }
            updateHealth(batch, storageFailure: false)
            announce(effects, store: store)
            return results
        } catch {
            // Replay what the failed transaction had taken (up to the failing
            // operation), each under a savepoint, so the failure stays its own.
            let subset = Array(batch.prefix(min(results.count + 1, batch.count)))
            return commitIsolatingFailures(subset, store: store)
        }
    }

    private func commitIsolatingFailures(_ batch: [Operation], store: SQLiteStore) -> [Result] {
        var results = [Result](repeating: .failed(Closed()), count: batch.count)
        var storageFailure = false
        var effects = CommitEffects()
        do {
            try store.database.write { db in
                effects = CommitEffects()
                for (index, operation) in batch.enumerated() {
                    do {
                        try db.inSavepoint {
                            results[index] = try apply(operation, store: store, db: db, effects: &effects)
                            return .commit
                        }
                    } catch {
                        storageFailure = storageFailure || StoreWriter.isStorageFailure(error)
                        results[index] = .failed(error)
                        if operation.isIngest {
                            logger.error("webhook not stored", metadata: ["error": "\(StoreWriter.reason(error))"])
                        }
                    }
                }
            }
            // A full or failing volume fails items one by one inside a committed
            // transaction; it still means the store cannot accept webhooks.
            updateHealth(batch, storageFailure: storageFailure)
            announce(effects, store: store)
            return results
        } catch {
            // The transaction did not commit: nothing in it may be acknowledged.
            logger.error("store commit failed", metadata: ["error": "\(StoreWriter.reason(error))", "batch": "\(batch.count)"])
            setHealthy(false)
            if let dbError = error as? DatabaseError, dbError.resultCode == .SQLITE_IOERR || dbError.resultCode == .SQLITE_CORRUPT {
                store.reopen()
            }
            return batch.map { _ in .failed(error) }
        }
    }

    private func announce(_ effects: CommitEffects, store: SQLiteStore) {
        store.announceCommit(createdJobs: effects.createdJobs, queuedEvents: effects.queuedEvents)
    }

    /// Health speaks of webhooks: only a batch that stored one clears a
    /// failure (job bookkeeping may fit where a 4 KB body no longer does).
    private func updateHealth(_ batch: [Operation], storageFailure: Bool) {
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
