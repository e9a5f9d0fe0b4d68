import Clocks
import Domain
import Foundation
import GRDB

extension SQLiteStore: ArchiveStore {
    static let archiveColumns = """
        id, company_id, subject_id, job_id, mapping, kind, original_name, content_type, sniffed_type, type_mismatch,
        size, sha256, path, downloaded_at, url_expiry, source_url, retain_until
        """

    static func archivedFile(_ row: Row) -> ArchivedFile {
        ArchivedFile(
            id: row["id"], companyID: row["company_id"], candidateID: row["subject_id"], jobID: row["job_id"], mapping: row["mapping"],
            kind: row["kind"], originalName: row["original_name"], contentType: row["content_type"], sniffedType: row["sniffed_type"],
            typeMismatch: row["type_mismatch"], size: row["size"], sha256: row["sha256"], path: row["path"],
            downloadedAt: Timestamp(milliseconds: row["downloaded_at"]),
            urlExpiry: (row["url_expiry"] as Int64?).map(Timestamp.init(milliseconds:)),
            sourceURL: row["source_url"], retainUntil: Timestamp(milliseconds: row["retain_until"]))
    }

    /// On the reader connection; the lookup is the table's unique key.
    public func archivedFile(companyID: String, candidateID: String, sha256: String) async throws -> ArchivedFile? {
        try await reader.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(SQLiteStore.archiveColumns) FROM archive_files WHERE company_id = ? AND subject_id = ? AND sha256 = ?",
                arguments: [companyID, candidateID, sha256]
            ).map(SQLiteStore.archivedFile)
        }
    }

    /// Idempotent: the insert does nothing on a second copy of the content, and
    /// the stored row (with its `id`) is returned either way, in the same write.
    public func recordArchivedFile(_ file: ArchivedFile) async throws -> ArchivedFile {
        try await writer.perform { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO archive_files(company_id, subject_id, job_id, mapping, kind, original_name, content_type, sniffed_type,
                                              type_mismatch, size, sha256, path, downloaded_at, url_expiry, source_url, retain_until)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(company_id, subject_id, sha256) DO NOTHING
                    """,
                arguments: [
                    file.companyID, file.candidateID, file.jobID, file.mapping, file.kind, file.originalName, file.contentType,
                    file.sniffedType, file.typeMismatch, file.size, file.sha256, file.path, file.downloadedAt.milliseconds,
                    file.urlExpiry?.milliseconds, file.sourceURL, file.retainUntil.milliseconds,
                ])
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT \(SQLiteStore.archiveColumns) FROM archive_files WHERE company_id = ? AND subject_id = ? AND sha256 = ?",
                    arguments: [file.companyID, file.candidateID, file.sha256])
            else {
                throw StoreError.notFound("archive record just written")
            }
            return SQLiteStore.archivedFile(row)
        }
    }

    /// A candidate's archived files (all companies unless one is given).
    public func archivedFiles(candidateID: String, companyID: String? = nil) throws -> [ArchivedFile] {
        try reader.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteStore.archiveColumns) FROM archive_files
                    WHERE subject_id = ? AND (? IS NULL OR company_id = ?) ORDER BY id
                    """, arguments: [candidateID, companyID, companyID]
            ).map(SQLiteStore.archivedFile)
        }
    }

    /// Every record, in id order, a page at a time (for `archive verify`).
    public func archivedFiles(afterID: Int64, limit: Int) throws -> [ArchivedFile] {
        try reader.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(SQLiteStore.archiveColumns) FROM archive_files WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [afterID, limit]
            ).map(SQLiteStore.archivedFile)
        }
    }

    /// Blocking read on the reader connection (the retention service runs it on the blocking-I/O pool).
    public func archivedFiles(retainedBefore now: Timestamp, afterID: Int64, limit: Int) throws -> [ArchivedFile] {
        try reader.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteStore.archiveColumns) FROM archive_files WHERE retain_until <= ? AND id > ? ORDER BY id LIMIT ?
                    """, arguments: [now.milliseconds, afterID, limit]
            ).map(SQLiteStore.archivedFile)
        }
    }

    /// Deletes a record once its file is gone (secure_delete overwrites the row).
    public func deleteArchivedFile(id: Int64) throws {
        try writer.performAndWait { db, _ in
            try db.execute(sql: "DELETE FROM archive_files WHERE id = ?", arguments: [id])
        }
    }

    /// Archive jobs created while this version had no archive executor go back
    /// to the queue (their deadlines still decide whether they can run).
    public func releaseJobsHeldForMissingExecutor(kinds: [String], now: Timestamp) async throws -> Int {
        try await writer.perform { db, _ in
            var released = 0
            for kind in kinds {
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, run_at = ?, updated_at = ?, last_error = NULL, hold_reason = NULL, hold_detail = NULL
                        WHERE state = \(SQL.literal(.held)) AND kind = ? AND hold_reason = ?
                        """,
                    arguments: [
                        try JobState.held.after(.release).rawValue, now.milliseconds, now.milliseconds, kind,
                        HoldReason.Code.noExecutor.rawValue,
                    ])
                released += db.changesCount
            }
            return released
        }
    }
}
