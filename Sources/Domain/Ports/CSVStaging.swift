import JSON
import Clocks

/// A period of a CSV mapping: [start, end) in Unix seconds.
public struct CSVPeriod: Sendable, Hashable, CustomStringConvertible {
    public var start: Int64
    public var end: Int64

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

public enum StagingOutcome: Sendable, Hashable {
    case staged(period: CSVPeriod)
    /// Same key, older `received_at` than the staged row: the later one stays.
    case olderThanStaged
    case skippedAlreadyExported
}

/// The CSV staging area and export bookkeeping, as the CSV executor and the
/// export service see them.
public protocol CSVStaging: Sendable {
    /// Upserts a row into `period` (last received wins); applies the re-send
    /// policy if the key was exported before; a row for a period already
    /// exported goes into `openPeriod`.
    func stage(mapping: String, period: CSVPeriod, openPeriod: CSVPeriod, rowKey: String, receivedAt: Timestamp, jobID: Int64,
               row: JSONValue, policy: CSVResendPolicy, companyID: String?, subjectID: String?) async throws -> StagingOutcome
}

/// The export side of the CSV store.
public protocol CSVExportStore: CSVStaging {
    func csvScheduleSince(mapping: String, now: Int64) throws -> Int64
    func csvLastExportedEnd(mapping: String) throws -> Int64?
    func csvPeriodExported(mapping: String, periodStart: Int64) throws -> Bool
    func claimCSVExport(mapping: String, period: CSVPeriod, owner: String, now: Int64, staleAfter: Int64, redo: Bool) throws -> Bool
    func forEachCSVRow(mapping: String, periodStart: Int64, _ body: (_ rowKey: String, _ row: [UInt8]) throws -> Void) throws
    func completeCSVExport(mapping: String, period: CSVPeriod, file: String, rows: Int, now: Int64) throws
    func releaseCSVExport(mapping: String, period: CSVPeriod) throws
}
