import BridgeCore
import Foundation
import GRDB
import Logging

/// The single writer of the inbox, with group commit.
///
/// Webhooks queue here; one thread takes everything that queued during the
/// previous commit and writes it in one transaction, so concurrent webhooks
/// share one fsync. Each item runs under its own savepoint: one bad item never
/// fails the batch. A dedicated thread (not the cooperative pool) blocks on
/// SQLite, as GRDB's synchronous API requires.
final class IngestWriter: @unchecked Sendable {
    private struct Pending {
        var item: IngestItem
        var continuation: CheckedContinuation<IngestOutcome, Never>
    }

    // All mutable state below is guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [Pending] = []
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

    /// False after a failed commit, until the next commit succeeds.
    var isHealthy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return healthy && !stopping
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "ingest-writer"
        self.thread = thread
        thread.start()
    }

    func submit(_ item: IngestItem) async -> IngestOutcome {
        await withCheckedContinuation { continuation in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(returning: .unavailable(reason: "shutting down"))
                return
            }
            if pending.count >= capacity {
                condition.unlock()
                continuation.resume(returning: .unavailable(reason: "ingest queue full"))
                return
            }
            pending.append(Pending(item: item, continuation: continuation))
            condition.signal()
            condition.unlock()
        }
    }

    /// Commits what is queued, refuses anything new, and waits for the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished && thread != nil { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty && stopping {
                finished = true
                store = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let take = min(pending.count, maxBatch)
            let batch = Array(pending.prefix(take))
            pending.removeFirst(take)
            condition.unlock()

            let outcomes = commit(batch.map(\.item))
            for (pending, outcome) in zip(batch, outcomes) {
                pending.continuation.resume(returning: outcome)
            }
        }
    }

    private func commit(_ items: [IngestItem]) -> [IngestOutcome] {
        guard let store else { return items.map { _ in .unavailable(reason: "store closed") } }
        var outcomes = [IngestOutcome](repeating: .unavailable(reason: "not committed"), count: items.count)
        var storageFailure = false
        do {
            try store.database.write { db in
                for (index, item) in items.enumerated() {
                    do {
                        try db.inSavepoint {
                            outcomes[index] = try store.insert(item, db: db)
                            return .commit
                        }
                    } catch {
                        storageFailure = storageFailure || IngestWriter.isStorageFailure(error)
                        outcomes[index] = .unavailable(reason: IngestWriter.reason(error))
                        logger.error("webhook not stored", metadata: ["error": "\(IngestWriter.reason(error))"])
                    }
                }
            }
            // A full or failing volume fails items one by one inside a committed
            // transaction; it still means the store cannot accept webhooks.
            setHealthy(!storageFailure)
            if outcomes.contains(where: { if case .stored(_, let jobs) = $0 { return jobs > 0 } else { return false } }) {
                store.onJobsCommitted.withLock { $0 }?()
            }
            return outcomes
        } catch {
            // The transaction did not commit: nothing in it may be acknowledged.
            let reason = IngestWriter.reason(error)
            logger.error("ingest commit failed", metadata: ["error": "\(reason)", "batch": "\(items.count)"])
            setHealthy(false)
            if let dbError = error as? DatabaseError, dbError.resultCode == .SQLITE_IOERR || dbError.resultCode == .SQLITE_CORRUPT {
                store.reopen()
            }
            return items.map { _ in .unavailable(reason: reason) }
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
