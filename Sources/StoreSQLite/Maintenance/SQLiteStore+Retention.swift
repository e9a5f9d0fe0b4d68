import Clocks
import Domain
import Foundation
import GRDB
import JSON

extension SQLiteStore: RetentionStore {
    /// Deletes raw bodies past their retention. Rows and their body hashes stay,
    /// so a late transport retry is still recognised as a duplicate and cannot
    /// bring purged personal data back; `secure_delete` overwrites the pages.
    /// Also clears what jobs carry of the same people once they ended that
    /// long ago (rendered requests, captures) and deletes staged CSV rows of
    /// periods exported that long ago. The rows stay as a trail of what
    /// happened; their personal data does not.
    @discardableResult
    public func purgeExpiredBodies(now: Timestamp, policy: RetentionPolicy) async throws -> (inbox: Int, quarantine: Int) {
        let inboxCutoff = now.milliseconds - Int64(policy.inboxBodyDays) * 86_400_000
        let quarantineCutoff = now.milliseconds - Int64(policy.quarantineDays) * 86_400_000
        return try await writer.perform { db, _ in
            try db.execute(
                sql: """
                    UPDATE inbox SET body = NULL, body_purged_at = :now
                    WHERE body IS NOT NULL AND received_at < :cutoff
                      AND NOT EXISTS (SELECT 1 FROM route_queue WHERE route_queue.event_id = inbox.id)
                      AND NOT EXISTS (
                          SELECT 1 FROM jobs WHERE jobs.event_id = inbox.id
                            AND (jobs.state NOT IN \(SQL.list(JobState.terminal)) OR jobs.updated_at >= :cutoff))
                    """, arguments: ["now": now.milliseconds, "cutoff": inboxCutoff])
            let inbox = db.changesCount
            try db.execute(
                sql: """
                    UPDATE quarantine SET body = NULL, body_purged_at = :now WHERE body IS NOT NULL AND received_at < :cutoff
                    """, arguments: ["now": now.milliseconds, "cutoff": quarantineCutoff])
            let quarantine = db.changesCount
            // A flow keeps which steps ended (never their captures): a retry
            // after retention must not send a finished step again.
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT id, flow_state FROM jobs WHERE kind = 'flow' AND flow_state IS NOT NULL
                      AND state IN \(SQL.list(JobState.terminal)) AND updated_at < :cutoff AND payload != X'7B7D'
                    """, arguments: ["cutoff": inboxCutoff])
            {
                let kept = FlowProgress(stored: (row["flow_state"] as Data?).map { [UInt8]($0) }).withoutCaptures()
                try db.execute(
                    sql: "UPDATE jobs SET flow_state = ? WHERE id = ?", arguments: [Data(JSONWriter.bytes(kept.json)), row["id"] as Int64])
            }
            try db.execute(
                sql: """
                    UPDATE jobs SET payload = X'7B7D', capture = NULL, alt_payload = NULL, after_capture = NULL
                    WHERE state IN \(SQL.list(JobState.terminal)) AND updated_at < :cutoff AND payload != X'7B7D'
                    """, arguments: ["cutoff": inboxCutoff])
            try db.execute(
                sql: """
                    DELETE FROM csv_rows WHERE EXISTS (
                        SELECT 1 FROM csv_exports e WHERE e.mapping = csv_rows.mapping AND e.period_start = csv_rows.period_start
                          AND e.state = :done AND e.exported_at < :cutoff)
                    """, arguments: ["done": CSVExportState.done.rawValue, "cutoff": inboxCutoff / 1000])
            return (inbox, quarantine)
        }
    }
}
