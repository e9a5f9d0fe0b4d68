import Clocks
import JSON

/// A period of a CSV mapping: [start, end) in Unix seconds.
public struct CSVPeriod: Sendable, Hashable, CustomStringConvertible {
    /// Inclusive; with the mapping, the key of its staged rows and of its export.
    public var start: Int64
    /// Exclusive: the next period's start.
    public var end: Int64

    /// Not checked: `start < end` is the caller's to keep.
    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public var description: String { "[\(start), \(end))" }
}

/// What happens to a row whose key was already exported in an earlier file.
public enum CSVResendPolicy: String, Sendable {
    /// Never again (payroll-style files: no double import).
    case skip
    /// Again, in the open period, only if its content changed.
    case includeIfChanged = "include_if_changed"
    /// Again, in the open period.
    case always
}

/// The state of one (mapping, period) export.
public enum CSVExportState: String, Sendable {
    /// Being written by `claimed_by` (a stale claim is taken over).
    case claimed
    /// Written and renamed into place.
    case done
}

/// What staging did with a row; the CSV executor counts each as a success (a failure throws instead).
public enum StagingOutcome: Sendable, Hashable {
    /// Inserted or replaced; `period` is where it went (the open one if its own was already exported).
    case staged(period: CSVPeriod)
    /// Same key, older `received_at` than the staged row: the later one stays.
    case olderThanStaged
    /// The key was exported before and the re-send policy says no (or the content is unchanged).
    case skippedAlreadyExported
}

extension StagingOutcome {
    /// What the job's `capture` records of it (the job ends `done` in every case).
    public func capture(policy: CSVResendPolicy) -> JSONValue {
        switch self {
        case .staged(let target): return ["period_start": .number(JSONNumber(target.start))]
        case .olderThanStaged: return ["staged": "a later event for this row is already staged"]
        case .skippedAlreadyExported: return ["staged": .string("already exported (on_resend: \(policy.rawValue))")]
        }
    }
}

/// Everything staging one row needs, decided before the write: which period
/// the row belongs to (by its event's arrival) and which one is open now.
public struct RowStaging: Sendable, Hashable {
    /// The CSV mapping whose file the row goes into.
    public var mapping: String
    /// The period of the event's arrival.
    public var period: CSVPeriod
    /// The period open at staging time: it takes the row if `period` was exported already.
    public var openPeriod: CSVPeriod
    /// The rendered `row_key`: one row per key and period, the last received wins.
    public var rowKey: String
    /// The event's arrival (orders re-sends of one key).
    public var receivedAt: Timestamp
    /// The rendered columns.
    public var row: JSONValue
    /// What happens if the key was exported before.
    public var policy: CSVResendPolicy

    /// Plain memberwise initializer.
    public init(
        mapping: String, period: CSVPeriod, openPeriod: CSVPeriod, rowKey: String, receivedAt: Timestamp, row: JSONValue,
        policy: CSVResendPolicy
    ) {
        self.mapping = mapping
        self.period = period
        self.openPeriod = openPeriod
        self.rowKey = rowKey
        self.receivedAt = receivedAt
        self.row = row
        self.policy = policy
    }
}

/// The CSV staging area and export bookkeeping, as the CSV executor and the
/// export service see them.
public protocol CSVStaging: Sendable {
    /// Upserts a row into `period` (last received wins); applies the re-send
    /// policy if the key was exported before; a row for a period already
    /// exported goes into `openPeriod`.
    func stage(
        mapping: String, period: CSVPeriod, openPeriod: CSVPeriod, rowKey: String, receivedAt: Timestamp, jobID: Int64,
        row: JSONValue, policy: CSVResendPolicy, companyID: String?, subjectID: String?
    ) async throws -> StagingOutcome
}

/// The export side of the CSV store.
/// Times are Unix seconds. Synchronous: the calls block their thread until
/// read or committed, so callers run them on a thread allowed to block (the
/// blocking-I/O pool, the CLI's main thread), never on the cooperative pool.
public protocol CSVExportStore: CSVStaging, CSVUploadStore {
    /// Since when `mapping`'s periods are exported; the first call records `now`,
    /// so periods that ended before a mapping was first seen are never exported.
    func csvScheduleSince(mapping: String, now: Int64) throws -> Int64
    /// The end of the latest exported period, `nil` before the first export.
    func csvLastExportedEnd(mapping: String) throws -> Int64?
    /// True once the period's file was written and recorded (`done`).
    func csvPeriodExported(mapping: String, periodStart: Int64) throws -> Bool
    /// Claims the period's export for `owner`. False when it is done (unless
    /// `redo`) or another owner claimed it less than `staleAfter` seconds ago.
    func claimCSVExport(mapping: String, period: CSVPeriod, owner: String, now: Int64, staleAfter: Int64, redo: Bool) throws -> Bool
    /// The period's staged rows ordered by row key, read as a stream.
    func forEachCSVRow(mapping: String, periodStart: Int64, _ body: (_ rowKey: String, _ row: [UInt8]) throws -> Void) throws
    /// Marks the period `done` with its file and remembers each exported row key
    /// (for re-send policies); `upload`, for a remote folder, is recorded in
    /// the same commit (a redo starts its upload over).
    func completeCSVExport(mapping: String, period: CSVPeriod, file: String, rows: Int, now: Int64, upload: FileUpload?) throws
    /// Gives a claim up after a failed export: open again, or `done` again if it was a redo.
    func releaseCSVExport(mapping: String, period: CSVPeriod) throws
}

/// The upload bookkeeping of CSV files delivered to a remote folder (SFTP).
/// Synchronous like `CSVExportStore`: callers run on a thread allowed to block.
public protocol CSVUploadStore: Sendable {
    /// Uploads due at `now` (pending or staged), and uploaded ones whose local
    /// copy is still to be removed, oldest period first.
    func csvUploadsToProcess(now: Int64) throws -> [FileUpload]
    /// Records the upload's new state if the stored record is still about the
    /// same file (same SHA-256): a redo of the period meanwhile replaced it,
    /// and then nothing is written and false comes back (the uploader stops
    /// working on the old file). Blocks until committed (a `staged` must be
    /// durable before the rename it allows).
    @discardableResult
    func recordCSVUpload(_ upload: FileUpload) throws -> Bool
    /// Every recorded upload of `mapping`, newest period first (for `jobs`-style output and tests).
    func csvUploads(mapping: String) throws -> [FileUpload]
    /// The upload of one period, if it has one (a redo replaces it).
    func csvUpload(mapping: String, periodStart: Int64) throws -> FileUpload?
}
