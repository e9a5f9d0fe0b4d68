import Clocks
import JSON

/// The store's upkeep and operator side, as protocols, so the store contract
/// suite covers them for every store (SQLite now, PostgreSQL later).

/// How long raw bodies are kept.
public struct RetentionPolicy: Sendable, Hashable {
    /// Days a raw inbox body is kept after its last job reached a terminal state.
    public var inboxBodyDays: Int = 30
    /// Days a quarantined body is kept after it arrived.
    public var quarantineDays: Int = 30

    /// Defaults: 30 days for both.
    public init(inboxBodyDays: Int = 30, quarantineDays: Int = 30) {
        self.inboxBodyDays = inboxBodyDays
        self.quarantineDays = quarantineDays
    }
}

/// What erasing a candidate did (or, in a dry run, would do).
public struct ErasureReport: Sendable, Hashable {
    /// Inbox events of the candidate (their bodies are removed; rows and hashes stay).
    public var events = 0
    /// Open jobs of those events moved to `cancelled`, so nothing is sent afterwards.
    public var jobsCancelled = 0
    /// Jobs of those events whose rendered request and captures were cleared.
    public var jobsCleared = 0
    /// Quarantined bodies removed because they contain the candidate id.
    public var quarantined = 0
    /// Staged CSV rows deleted, those of exported periods included.
    public var csvRows = 0
    /// Records of exported CSV rows deleted (the files themselves are in `exportedFiles`).
    public var csvExportedKeys = 0
    /// CSV files already delivered that held the candidate's rows: outside the
    /// store, so the operator removes the rows there.
    public var exportedFiles: [String] = []
    /// Archived files to delete with their sidecars and records (`ArchivePurger`-style).
    public var archiveFiles: [ArchivedFile] = []

    public init() {}
}

/// Purges personal data past its retention (hashes and the ledger stay).
public protocol RetentionStore: Sendable {
    func purgeExpiredBodies(now: Timestamp, policy: RetentionPolicy) async throws -> (inbox: Int, quarantine: Int)
}

/// Erases a candidate's personal data (open jobs cancelled first; hashes and the ledger stay).
public protocol ErasureStore: Sendable {
    func erase(candidateID: String, companyID: String?, now: Timestamp, dryRun: Bool) throws -> ErasureReport
}

/// What operators do by hand; each is allowed only where `JobTransition` allows it.
public protocol OperatorJobStore: Sendable {
    /// `dead`, `held`, `cancelled`, `in_doubt` or `set_aside` → `pending` now;
    /// returns how many. A job of an `after` mapping runs only once its
    /// dependency delivered (`DependencyOutcome`); until then it waits again, uncounted.
    func retry(jobIDs: [Int64], now: Timestamp) async throws -> Int
    /// An `in_doubt` job: delivered (done + ledger, with `capture` as the job's
    /// capture, handed to the jobs `after` it) or not (pending, sent again with the same key).
    func resolve(jobID: Int64, delivered: Bool, capture: JSONValue?, now: Timestamp) async throws
    /// Also cancels the jobs of `after` mappings waiting for it (`DependencyOutcome.cancel`).
    func cancel(jobID: Int64, now: Timestamp) async throws
}

extension OperatorJobStore {
    /// Resolves without captured values.
    public func resolve(jobID: Int64, delivered: Bool, now: Timestamp) async throws {
        try await resolve(jobID: jobID, delivered: delivered, capture: nil, now: now)
    }
}
