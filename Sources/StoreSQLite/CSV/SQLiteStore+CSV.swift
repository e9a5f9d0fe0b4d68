import Clocks
import Crypto
import Domain
import Foundation
import GRDB
import JSON

/// One row to stage, as queued to the writer.
struct StagingRequest: Sendable {
    var mapping: String
    var period: CSVPeriod
    var openPeriod: CSVPeriod
    var rowKey: String
    var receivedAt: Timestamp
    var jobID: Int64
    var row: [UInt8]
    var policy: CSVResendPolicy
    var companyID: String?
    var subjectID: String?
}

extension SQLiteStore: CSVExportStore {
    /// The latest `done` period's end (Unix seconds), on the reader connection.
    public func csvLastExportedEnd(mapping: String) throws -> Int64? {
        try reader.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT MAX(period_end) FROM csv_exports WHERE mapping = ? AND state = ?",
                arguments: [mapping, CSVExportState.done.rawValue])
        }
    }

    /// The row is written as JSON bytes and hashed for `include_if_changed`; a row
    /// received earlier than the one staged under its key leaves the staged one in place.
    public func stage(
        mapping: String, period: CSVPeriod, openPeriod: CSVPeriod, rowKey: String, receivedAt: Timestamp, jobID: Int64,
        row: JSONValue, policy: CSVResendPolicy, companyID: String?, subjectID: String?
    ) async throws -> StagingOutcome {
        // Through the single writer, so staging shares group commits with the other job work
        // (claims, completions, routing); webhooks have commits of their own.
        let request = StagingRequest(
            mapping: mapping, period: period, openPeriod: openPeriod, rowKey: rowKey, receivedAt: receivedAt, jobID: jobID,
            row: JSONWriter.bytes(row), policy: policy, companyID: companyID, subjectID: subjectID)
        return try await writer.perform { [self] db, _ in try stage(db: db, request) }
    }

    /// Runs inside the writer's transaction.
    func stage(db: Database, _ request: StagingRequest) throws -> StagingOutcome {
        let hash = Data(SHA256.hash(data: request.row))
        var target = request.period
        if try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM csv_exports WHERE mapping = ? AND period_start = ? AND state = ?"),
            arguments: [request.mapping, request.period.start, CSVExportState.done.rawValue]) == true
        {
            target = request.openPeriod  // its own period is already out: the open one carries it
        }
        if let exported = try Data.fetchOne(
            db.cachedStatement(sql: "SELECT row_hash FROM csv_exported_keys WHERE mapping = ? AND row_key = ?"),
            arguments: [request.mapping, request.rowKey])
        {
            switch request.policy {
            case .skip: return .skippedAlreadyExported
            case .includeIfChanged where exported == hash: return .skippedAlreadyExported
            case .includeIfChanged, .always: break
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO csv_rows(mapping, period_start, period_end, row_key, received_at, job_id, row, row_hash, company_id, subject_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(mapping, period_start, row_key) DO UPDATE SET
                    received_at = excluded.received_at, job_id = excluded.job_id, row = excluded.row, row_hash = excluded.row_hash,
                    company_id = excluded.company_id, subject_id = excluded.subject_id
                WHERE excluded.received_at >= csv_rows.received_at
                """
        ).execute(arguments: [
            request.mapping, target.start, target.end, request.rowKey, request.receivedAt.milliseconds, request.jobID,
            Data(request.row), hash, request.companyID, request.subjectID,
        ])
        return db.changesCount > 0 ? .staged(period: target) : .olderThanStaged
    }

    /// Since when `mapping`'s periods are exported; set to `now` when first asked.
    public func csvScheduleSince(mapping: String, now: Int64) throws -> Int64 {
        try writer.performAndWait { db, _ in
            try db.execute(sql: "INSERT INTO csv_schedules(mapping, since) VALUES (?, ?) ON CONFLICT(mapping) DO NOTHING", arguments: [mapping, now])
            return try Int64.fetchOne(db, sql: "SELECT since FROM csv_schedules WHERE mapping = ?", arguments: [mapping]) ?? now
        }
    }

    /// On the reader connection: sees only committed exports.
    public func csvPeriodExported(mapping: String, periodStart: Int64) throws -> Bool {
        try reader.read { db in
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM csv_exports WHERE mapping = ? AND period_start = ? AND state = ?",
                arguments: [mapping, periodStart, CSVExportState.done.rawValue]) == true
        }
    }

    /// Claims a period's export. False when it is done, or claimed by someone
    /// else less than `staleAfter` seconds ago (a crashed claimer is taken over).
    public func claimCSVExport(mapping: String, period: CSVPeriod, owner: String, now: Int64, staleAfter: Int64, redo: Bool) throws -> Bool {
        try writer.performAndWait { db, _ in
            if let row = try Row.fetchOne(
                db, sql: "SELECT state, claimed_by, claimed_at FROM csv_exports WHERE mapping = ? AND period_start = ?",
                arguments: [mapping, period.start])
            {
                let state = CSVExportState(rawValue: row["state"])
                let claimedAt: Int64 = row["claimed_at"] ?? 0
                if state == .done && !redo { return false }
                if state == .claimed && (row["claimed_by"] as String?) != owner && now - claimedAt < staleAfter { return false }
                try db.execute(
                    sql: "UPDATE csv_exports SET state = ?, claimed_by = ?, claimed_at = ? WHERE mapping = ? AND period_start = ?",
                    arguments: [CSVExportState.claimed.rawValue, owner, now, mapping, period.start])
                return true
            }
            try db.execute(
                sql: """
                    INSERT INTO csv_exports(mapping, period_start, period_end, state, claimed_by, claimed_at) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [mapping, period.start, period.end, CSVExportState.claimed.rawValue, owner, now])
            return true
        }
    }

    /// Streams a period's rows (ordered by row key) in pages, for flat memory.
    public func forEachCSVRow(mapping: String, periodStart: Int64, _ body: (_ rowKey: String, _ row: [UInt8]) throws -> Void) throws {
        try reader.read { db in
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT row_key, row FROM csv_rows WHERE mapping = ? AND period_start = ? ORDER BY row_key",
                arguments: [mapping, periodStart])
            while let row = try cursor.next() {
                try body(row["row_key"], [UInt8](row["row"] as Data))
            }
        }
    }

    /// Marks a period exported and remembers what each row key looked like.
    public func completeCSVExport(mapping: String, period: CSVPeriod, file: String, rows: Int, now: Int64, upload: FileUpload?) throws {
        try writer.performAndWait { db, _ in
            if let upload { try SQLiteStore.write(upload, db: db) }
            try db.execute(
                sql: """
                    UPDATE csv_exports SET state = ?, file = ?, rows = ?, exported_at = ?, claimed_by = NULL WHERE mapping = ? AND period_start = ?
                    """, arguments: [CSVExportState.done.rawValue, file, rows, now, mapping, period.start])
            try db.execute(
                sql: """
                    INSERT INTO csv_exported_keys(mapping, row_key, row_hash, period_start, company_id, subject_id)
                    SELECT mapping, row_key, row_hash, period_start, company_id, subject_id FROM csv_rows WHERE mapping = ? AND period_start = ? AND true
                    ON CONFLICT(mapping, row_key) DO UPDATE SET row_hash = excluded.row_hash, period_start = excluded.period_start
                    """, arguments: [mapping, period.start])
        }
    }

    /// Blocks until committed. Owner and claim time are reset, so any owner may claim the period again at once.
    public func releaseCSVExport(mapping: String, period: CSVPeriod) throws {
        try writer.performAndWait { db, _ in
            // A released claim is open again, unless the period was exported before (a redo).
            try db.execute(
                sql: """
                    UPDATE csv_exports SET state = CASE WHEN exported_at IS NULL THEN ? ELSE ? END, claimed_by = NULL, claimed_at = 0
                    WHERE mapping = ? AND period_start = ?
                    """, arguments: [CSVExportState.claimed.rawValue, CSVExportState.done.rawValue, mapping, period.start])
        }
    }

    /// How many rows are staged for `mapping`'s period starting at `periodStart` (Unix seconds).
    public func csvRowCount(mapping: String, periodStart: Int64) throws -> Int {
        try reader.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM csv_rows WHERE mapping = ? AND period_start = ?", arguments: [mapping, periodStart]) ?? 0
        }
    }
}

extension SQLiteStore: CSVUploadStore {
    static let uploadColumns =
        "mapping, period_start, local_path, remote_url, size, sha256, state, attempts, next_attempt_at, last_error, uploaded_at"

    static func write(_ upload: FileUpload, db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO csv_uploads(\(uploadColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                upload.mapping, upload.periodStart, upload.localPath, upload.remoteURL, upload.size, upload.sha256, upload.state.rawValue,
                upload.attempts, upload.nextAttemptAt, upload.lastError, upload.uploadedAt,
            ])
    }

    /// `nil` for a state this version does not know (never read as `pending`:
    /// that would upload the file again).
    static func upload(_ row: Row) -> FileUpload? {
        guard let state = FileUploadState(rawValue: row["state"]) else { return nil }
        var upload = FileUpload(
            mapping: row["mapping"], periodStart: row["period_start"], localPath: row["local_path"] ?? "", remoteURL: row["remote_url"],
            size: row["size"], sha256: row["sha256"], now: row["next_attempt_at"])
        upload.localPath = row["local_path"]
        upload.state = state
        upload.attempts = row["attempts"]
        upload.lastError = row["last_error"]
        upload.uploadedAt = row["uploaded_at"]
        return upload
    }

    /// On the reader connection: committed state only.
    public func csvUploadsToProcess(now: Int64) throws -> [FileUpload] {
        try reader.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteStore.uploadColumns) FROM csv_uploads
                    WHERE (state != ? AND next_attempt_at <= ?) OR (state = ? AND local_path IS NOT NULL)
                    ORDER BY period_start, mapping
                    """,
                arguments: [FileUploadState.uploaded.rawValue, now, FileUploadState.uploaded.rawValue]
            ).compactMap(SQLiteStore.upload).filter { $0.isDue(now: now) }
        }
    }

    /// Through the writer; returns once committed.
    @discardableResult
    public func recordCSVUpload(_ upload: FileUpload) throws -> Bool {
        try writer.performAndWait { db, _ in
            try db.execute(
                sql: """
                    UPDATE csv_uploads SET local_path = ?, remote_url = ?, size = ?, state = ?, attempts = ?, next_attempt_at = ?,
                        last_error = ?, uploaded_at = ?
                    WHERE mapping = ? AND period_start = ? AND sha256 = ?
                    """,
                arguments: [
                    upload.localPath, upload.remoteURL, upload.size, upload.state.rawValue, upload.attempts, upload.nextAttemptAt,
                    upload.lastError, upload.uploadedAt, upload.mapping, upload.periodStart, upload.sha256,
                ])
            return db.changesCount == 1
        }
    }

    /// On the reader connection.
    public func csvUpload(mapping: String, periodStart: Int64) throws -> FileUpload? {
        try reader.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(SQLiteStore.uploadColumns) FROM csv_uploads WHERE mapping = ? AND period_start = ?",
                arguments: [mapping, periodStart]
            ).flatMap(SQLiteStore.upload)
        }
    }

    /// On the reader connection.
    public func csvUploads(mapping: String) throws -> [FileUpload] {
        try reader.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(SQLiteStore.uploadColumns) FROM csv_uploads WHERE mapping = ? ORDER BY period_start DESC",
                arguments: [mapping]
            ).compactMap(SQLiteStore.upload)
        }
    }
}
