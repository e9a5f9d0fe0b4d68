import Clocks
import Domain
import Foundation
import GRDB

extension SQLiteStore: ErasureStore {
    /// Erases a candidate's personal data from the store: raw bodies (hashes stay,
    /// so a late transport retry cannot bring the body back), rendered requests,
    /// captures and attempt details of their jobs (open jobs are cancelled first,
    /// so nothing is sent afterwards), staged and exported CSV rows, quarantined
    /// bodies that mention the candidate id. The effect ledger keeps its keys:
    /// forgetting that a hire was delivered would let a re-send create it again.
    /// `secure_delete` overwrites the freed pages. Archived files are listed in
    /// the report for the caller to delete (they live outside the store).
    /// With `dryRun` the same statements run in a transaction that is rolled
    /// back, so the report counts what would go. Blocks its thread.
    public func erase(candidateID: String, companyID: String?, now: Timestamp, dryRun: Bool) throws -> ErasureReport {
        var report = ErasureReport()
        try database.writeWithoutTransaction { db in
            try db.inTransaction {
                let events = try Int64.fetchAll(
                    db, sql: "SELECT id FROM inbox WHERE subject_id = ? AND (? IS NULL OR company_id = ?)",
                    arguments: [candidateID, companyID, companyID])
                report.events = events.count
                for chunk in stride(from: 0, to: events.count, by: 500) {
                    let ids = Array(events[chunk..<min(chunk + 500, events.count)])
                    let list = ids.map(String.init).joined(separator: ",")
                    try db.execute(
                        sql: """
                            UPDATE jobs SET state = ?, last_error = 'erased by an operator', lease_owner = NULL,
                                lease_expires_at = NULL, updated_at = ?
                            WHERE event_id IN (\(list)) AND state IN \(SQL.list(JobTransition.erase.sources))
                            """, arguments: [JobTransition.erase.target.rawValue, now.milliseconds])
                    report.jobsCancelled += db.changesCount
                    try db.execute(
                        sql: """
                            UPDATE job_attempts SET detail = NULL WHERE detail IS NOT NULL AND job_id IN (SELECT id FROM jobs WHERE event_id IN (\(list)))
                            """)
                    try db.execute(
                        sql: """
                            UPDATE jobs SET payload = X'7B7D', capture = NULL, alt_payload = NULL, after_capture = NULL, flow_state = NULL
                            WHERE event_id IN (\(list))
                            """)
                    report.jobsCleared += db.changesCount
                    try db.execute(sql: "DELETE FROM route_queue WHERE event_id IN (\(list))")
                    try db.execute(
                        sql: "UPDATE inbox SET body = NULL, body_purged_at = ? WHERE id IN (\(list)) AND body IS NOT NULL",
                        arguments: [now.milliseconds])
                }
                try db.execute(
                    sql: "UPDATE quarantine SET body = NULL, body_purged_at = ? WHERE body IS NOT NULL AND instr(body, ?) > 0",
                    arguments: [now.milliseconds, Data(candidateID.utf8)])
                report.quarantined = db.changesCount
                report.exportedFiles = try String.fetchAll(
                    db,
                    sql: """
                        SELECT DISTINCT e.file FROM csv_exported_keys k
                        JOIN csv_exports e ON e.mapping = k.mapping AND e.period_start = k.period_start
                        WHERE k.subject_id = ? AND (? IS NULL OR k.company_id = ?) AND e.file IS NOT NULL ORDER BY e.file
                        """, arguments: [candidateID, companyID, companyID])
                try db.execute(
                    sql: "DELETE FROM csv_rows WHERE subject_id = ? AND (? IS NULL OR company_id = ?)",
                    arguments: [candidateID, companyID, companyID])
                report.csvRows = db.changesCount
                try db.execute(
                    sql: "DELETE FROM csv_exported_keys WHERE subject_id = ? AND (? IS NULL OR company_id = ?)",
                    arguments: [candidateID, companyID, companyID])
                report.csvExportedKeys = db.changesCount
                report.archiveFiles = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(SQLiteStore.archiveColumns) FROM archive_files WHERE subject_id = ? AND (? IS NULL OR company_id = ?) ORDER BY id
                        """, arguments: [candidateID, companyID, companyID]
                ).map(SQLiteStore.archivedFile)
                return dryRun ? .rollback : .commit
            }
        }
        return report
    }
}
