import BridgeCore
import GRDB

/// How long raw bodies are kept.
public struct RetentionPolicy: Sendable, Hashable {
    /// Days a raw inbox body is kept after its last job reached a terminal state.
    public var inboxBodyDays: Int = 30
    /// Days a quarantined body is kept after it arrived.
    public var quarantineDays: Int = 30

    public init(inboxBodyDays: Int = 30, quarantineDays: Int = 30) {
        self.inboxBodyDays = inboxBodyDays
        self.quarantineDays = quarantineDays
    }
}

extension SQLiteStore {
    /// Deletes raw bodies past their retention. Rows and their body hashes stay,
    /// so a late transport retry is still recognised as a duplicate and cannot
    /// bring purged personal data back; `secure_delete` overwrites the pages.
    @discardableResult
    public func purgeExpiredBodies(now: Timestamp, policy: RetentionPolicy) async throws -> (inbox: Int, quarantine: Int) {
        let inboxCutoff = now.milliseconds - Int64(policy.inboxBodyDays) * 86_400_000
        let quarantineCutoff = now.milliseconds - Int64(policy.quarantineDays) * 86_400_000
        return try await database.write { db in
            try db.execute(sql: """
                UPDATE inbox SET body = NULL, body_purged_at = :now
                WHERE body IS NOT NULL AND received_at < :cutoff
                  AND NOT EXISTS (
                      SELECT 1 FROM jobs WHERE jobs.event_id = inbox.id
                        AND (jobs.state NOT IN ('done', 'dead', 'skipped', 'cancelled') OR jobs.updated_at >= :cutoff))
                """, arguments: ["now": now.milliseconds, "cutoff": inboxCutoff])
            let inbox = db.changesCount
            try db.execute(sql: """
                UPDATE quarantine SET body = NULL, body_purged_at = :now WHERE body IS NOT NULL AND received_at < :cutoff
                """, arguments: ["now": now.milliseconds, "cutoff": quarantineCutoff])
            return (inbox, db.changesCount)
        }
    }
}
