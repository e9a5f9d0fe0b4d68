import BridgeCore
import Foundation
import GRDB
import JSON

extension SQLiteStore: JobStore {
    public func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane) async throws -> [ClaimedJob] {
        try await writer.claim(owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: lane)
    }

    /// The lane's filter and order; each matches a partial index of pending jobs
    /// (`jobs_pending_due`, `jobs_pending_deadline`), so a claim reads only due work.
    static func laneSQL(_ lane: ClaimLane, table: String = "j") -> (filter: String, order: String) {
        switch lane {
        case .dueTime: return ("AND \(table).deadline IS NULL", "\(table).run_at, \(table).id")
        case .earliestDeadline: return ("AND \(table).deadline IS NOT NULL", "\(table).deadline, \(table).id")
        }
    }

    public func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws {
        try await writer.complete(jobID: jobID, owner: owner, completion: completion, now: now)
    }

    /// Runs inside the writer's transaction.
    func claim(db: Database, owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane = .dueTime) throws -> [ClaimedJob] {
        let (laneFilter, laneOrder) = SQLiteStore.laneSQL(lane)
        // The deadline lane has its own parallelism; the per-mapping cap guards the shared lane.
        let capPerMapping: Bool = if case .dueTime = lane { true } else { false }
        do {
            // Runners that died mid-attempt: re-run what is safe to re-run, park the rest.
            try db.cachedStatement(sql: """
                UPDATE jobs SET state = CASE crash_policy WHEN 'rerun' THEN 'pending' ELSE 'in_doubt' END,
                    last_error = 'lease expired: the runner stopped during an attempt',
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
                WHERE state = 'running' AND lease_expires_at <= :now
                """).execute(arguments: ["now": now.milliseconds])
            // Due jobs, oldest first; a job waits while an older job with the same
            // (mapping, effect key) is unfinished, so one entity's effects run in order.
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT j.id, j.event_id, j.mapping, j.item, j.kind, j.effect_key, j.payload, j.attempts,
                       j.company_id, j.subject_id, j.created_at, j.after_mapping, j.after_capture,
                       CASE WHEN j.after_mapping IS NOT NULL THEN (SELECT body FROM inbox WHERE inbox.id = j.event_id) END AS event_body,
                       j.on_repeat, j.alt_mapping, j.alt_kind, j.alt_payload, j.alt_mapping_hash, j.deadline
                FROM jobs j
                WHERE j.state = 'pending' AND j.run_at <= :now \(laneFilter)
                  AND NOT EXISTS (
                      SELECT 1 FROM jobs o
                      WHERE o.mapping = j.mapping AND o.effect_key = j.effect_key AND o.id < j.id
                        AND o.state IN ('pending', 'running', 'held', 'in_doubt'))
                ORDER BY \(laneOrder)
                LIMIT :limit
                """), arguments: ["now": now.milliseconds, "limit": limit * 4])
            var running: [String: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT mapping, COUNT(*) AS n FROM jobs WHERE state = 'running' GROUP BY mapping")) {
                running[row["mapping"]] = row["n"]
            }
            var claimed: [ClaimedJob] = []
            for row in rows {
                if claimed.count >= limit { break }
                // No head-of-line blocking: one mapping's endpoint cannot take every slot.
                let candidateMapping: String = row["mapping"]
                if capPerMapping && running[candidateMapping, default: 0] >= options.maxRunningPerMapping { continue }
                let id: Int64 = row["id"]
                var mapping: String = row["mapping"]
                var kind: String = row["kind"]
                var payload: Data = row["payload"]
                let effectKey: String = row["effect_key"]
                if let firstJob = try Int64.fetchOne(db.cachedStatement(sql: "SELECT job_id FROM effects WHERE mapping = ? AND effect_key = ?"), arguments: [mapping, effectKey]),
                   firstJob != id {
                    switch row["on_repeat"] as String {
                    case "send":
                        break
                    case "alternative":
                        // Run the alternative mapping's rendering instead (e.g. an update).
                        guard let altMapping: String = row["alt_mapping"], let altKind: String = row["alt_kind"],
                              let altPayload: Data = row["alt_payload"] else { fallthrough }
                        try db.cachedStatement(sql: """
                            UPDATE jobs SET mapping = ?, kind = ?, payload = ?, mapping_hash = ?, on_repeat = 'send',
                                last_error = 'repeat of the effect delivered by job ' || ? || ' (' || ? || '): ran ' || ? || ' instead'
                            WHERE id = ?
                            """).execute(arguments: [altMapping, altKind, altPayload, row["alt_mapping_hash"] as String?, firstJob, mapping, altMapping, id])
                        mapping = altMapping
                        kind = altKind
                        payload = altPayload
                    default:
                        try db.cachedStatement(sql: """
                            UPDATE jobs SET state = 'skipped', skipped_for = ?, updated_at = ?,
                                last_error = 'effect already delivered by job ' || ?
                            WHERE id = ?
                            """).execute(arguments: [firstJob, now.milliseconds, firstJob, id])
                        // What waits for this job waits for an effect that exists: release it
                        // with the capture of the job that delivered it.
                        let capture = try Data.fetchOne(db.cachedStatement(sql: "SELECT capture FROM jobs WHERE id = ?"), arguments: [firstJob])
                        try releaseDependents(db: db, mapping: mapping, companyID: row["company_id"], subjectID: row["subject_id"],
                                              capture: capture.flatMap { try? JSONParser.parse([UInt8]($0), options: .strict) }, now: now)
                        continue
                    }
                }
                let attempt: Int = row["attempts"] + 1
                try db.cachedStatement(sql: """
                    UPDATE jobs SET state = 'running', attempts = ?, lease_owner = ?, lease_expires_at = ?, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [attempt, owner, leaseUntil.milliseconds, now.milliseconds, id])
                running[candidateMapping, default: 0] += 1
                claimed.append(ClaimedJob(
                    id: id, eventID: row["event_id"], mapping: mapping, item: row["item"], kind: kind,
                    effectKey: effectKey, payload: [UInt8](payload), attempt: attempt,
                    companyID: row["company_id"], subjectID: row["subject_id"],
                    createdAt: Timestamp(milliseconds: row["created_at"]),
                    eventBody: (row["event_body"] as Data?).map { [UInt8]($0) },
                    afterCapture: (row["after_capture"] as Data?).map { [UInt8]($0) },
                    deadline: (row["deadline"] as Int64?).map(Timestamp.init(milliseconds:))))
            }
            return claimed
        }
    }

    public func renewLeases(jobIDs: [Int64], owner: String, until: Timestamp) async throws {
        guard !jobIDs.isEmpty else { return }
        try await database.write { db in
            for id in jobIDs {
                try db.execute(sql: "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'",
                               arguments: [until.milliseconds, id, owner])
            }
        }
    }

    /// Jobs of `after` mappings waiting for `mapping`'s job of this entity become due,
    /// with the capture that the executor puts in scope as `response`.
    func releaseDependents(db: Database, mapping: String, companyID: String?, subjectID: String?, capture: JSONValue?, now: Timestamp) throws {
        try db.cachedStatement(sql: """
            UPDATE jobs INDEXED BY jobs_after SET state = 'pending', run_at = ?, updated_at = ?, last_error = NULL, after_capture = ?
            WHERE after_mapping = ? AND company_id IS ? AND subject_id IS ? AND state = 'held' AND last_error LIKE 'after:%'
            """).execute(arguments: [now.milliseconds, now.milliseconds, Data(JSONWriter.bytes(capture ?? .object(JSONObject()))),
                                     mapping, companyID, subjectID])
    }

    /// Runs inside the writer's transaction.
    func complete(db: Database, jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) throws {
        do {
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT mapping, effect_key, company_id, subject_id, attempts FROM jobs
                WHERE id = ? AND lease_owner = ? AND state = 'running'
                """), arguments: [jobID, owner])
            else {
                // The lease was lost (expired and re-claimed): the other runner owns the outcome.
                return
            }
            let attempt: Int = row["attempts"]
            let outcome: String
            let detail: String?
            switch completion {
            case .done(let capture):
                outcome = "done"
                detail = nil
                try releaseDependents(db: db, mapping: row["mapping"], companyID: row["company_id"], subjectID: row["subject_id"],
                                      capture: capture, now: now)
                try db.cachedStatement(sql: """
                    UPDATE jobs SET state = 'done', capture = ?, last_error = NULL, lease_owner = NULL,
                        lease_expires_at = NULL, updated_at = ? WHERE id = ?
                    """).execute(arguments: [capture.map { Data(JSONWriter.bytes($0)) }, now.milliseconds, jobID])
                try db.cachedStatement(sql: """
                    INSERT INTO effects(mapping, effect_key, job_id, completed_at, company_id, subject_id)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(mapping, effect_key) DO NOTHING
                    """).execute(arguments: [row["mapping"] as String, row["effect_key"] as String, jobID, now.milliseconds,
                                     row["company_id"] as String?, row["subject_id"] as String?])
            case .retry(let at, let reason):
                outcome = "retry"
                detail = reason
                try db.cachedStatement(sql: """
                    UPDATE jobs SET state = 'pending', run_at = ?, last_error = ?, lease_owner = NULL,
                        lease_expires_at = NULL, updated_at = ? WHERE id = ?
                    """).execute(arguments: [at.milliseconds, reason, now.milliseconds, jobID])
            case .dead(let reason), .held(let reason), .expired(let reason):
                let state: JobState = switch completion {
                case .dead: .dead
                case .expired: .expired
                default: .held
                }
                outcome = state.rawValue
                detail = reason
                try db.cachedStatement(sql: """
                    UPDATE jobs SET state = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                    WHERE id = ?
                    """).execute(arguments: [state.rawValue, reason, now.milliseconds, jobID])
            }
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO job_attempts(job_id, attempt, finished_at, outcome, detail) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [jobID, attempt, now.milliseconds, outcome, detail])
        }
    }

    /// At start-up of the one daemon that owns this store (it holds the lock),
    /// every `running` job belongs to a process that is gone: apply the crash
    /// policy now instead of waiting for the leases to run out.
    /// Returns how many jobs were re-queued and parked.
    public func recoverJobsOfDeadRunners(now: Timestamp) throws -> (requeued: Int, inDoubt: Int) {
        try database.write { db in
            try db.cachedStatement(sql: """
                UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?,
                    last_error = 'the daemon stopped during an attempt; re-run (idempotent)'
                WHERE state = 'running' AND crash_policy = 'rerun'
                """).execute(arguments: [now.milliseconds])
            let requeued = db.changesCount
            try db.cachedStatement(sql: """
                UPDATE jobs SET state = 'in_doubt', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?,
                    last_error = 'the daemon stopped during an attempt; the downstream may have received it'
                WHERE state = 'running'
                """).execute(arguments: [now.milliseconds])
            return (requeued, db.changesCount)
        }
    }

    public func releaseLeases(owner: String, now: Timestamp) async throws {
        try await database.write { db in
            // The attempt never finished: give it back without counting it.
            try db.cachedStatement(sql: """
                UPDATE jobs SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = ? WHERE state = 'running' AND lease_owner = ?
                """).execute(arguments: [now.milliseconds, owner])
        }
    }

    public func nextWakeUp(lane: ClaimLane) async throws -> Timestamp? {
        // Per lane (a runner must not wake for due jobs it will not claim: it would
        // spin), and each an index lookup: this runs whenever a runner goes idle.
        let laneFilter = SQLiteStore.laneSQL(lane, table: "jobs").filter
        return try await reader.read { db in
            let due = try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT run_at FROM jobs WHERE state = 'pending' \(laneFilter) ORDER BY run_at LIMIT 1
                """))
            let lease = try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT lease_expires_at FROM jobs WHERE state = 'running' ORDER BY lease_expires_at LIMIT 1
                """))
            return [due, lease].compactMap { $0 }.min().map(Timestamp.init(milliseconds:))
        }
    }
}

/// Read-side queries for the CLI and metrics.
extension SQLiteStore {
    public struct JobSummary: Sendable, Hashable {
        public var id: Int64
        public var eventID: Int64
        public var mapping: String
        public var state: String
        public var attempts: Int
        public var effectKey: String
        public var lastError: String?
        public var skippedFor: Int64?
    }

    public func jobs(state: String? = nil, mapping: String? = nil, limit: Int = 1000) throws -> [JobSummary] {
        try reader.read { db in
            var sql = "SELECT id, event_id, mapping, state, attempts, effect_key, last_error, skipped_for FROM jobs WHERE 1 = 1"
            var arguments: StatementArguments = []
            if let state {
                sql += " AND state = ?"
                arguments += [state]
            }
            if let mapping {
                sql += " AND mapping = ?"
                arguments += [mapping]
            }
            sql += " ORDER BY id LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                JobSummary(id: row["id"], eventID: row["event_id"], mapping: row["mapping"], state: row["state"],
                           attempts: row["attempts"], effectKey: row["effect_key"], lastError: row["last_error"],
                           skippedFor: row["skipped_for"])
            }
        }
    }

    /// Job counts by state and the age of the oldest unfinished job (for metrics).
    public func jobStatistics(now: Timestamp) async throws -> (counts: [String: Int], oldestPendingAge: Int64?) {
        try await reader.read { db in
            var counts: [String: Int] = [:]
            // Unbounded terminal states (done, skipped, cancelled) are not counted here:
            // this runs every second and must stay proportional to the open queue.
            for row in try Row.fetchAll(db, sql: """
                SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ('pending', 'running', 'held', 'in_doubt', 'dead', 'expired') GROUP BY state
                """) {
                counts[row["state"]] = row["n"]
            }
            let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM jobs WHERE state IN ('pending', 'running')")
            return (counts, oldest.map { now.milliseconds - $0 })
        }
    }

    public func countRows(_ table: String) throws -> Int {
        let allowed: Set<String> = ["inbox", "quarantine", "jobs", "effects", "companies", "job_attempts"]
        guard allowed.contains(table) else { throw StoreError.notFound("table \(table)") }
        return try reader.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }
}

extension SQLiteStore {
    /// The latest company/signup facts, for the router's `CompanyDirectory`.
    public func companies() throws -> [CompanySnapshot] {
        try reader.read { db in
            try Row.fetchAll(db, sql: "SELECT id, internal_id, name, settings FROM companies ORDER BY id").map { row in
                let settings: Data? = row["settings"]
                return CompanySnapshot(
                    id: row["id"], internalID: row["internal_id"], name: row["name"],
                    settings: settings.flatMap { try? JSONParser.parse([UInt8]($0), options: .strict) })
            }
        }
    }

    /// Jobs held for a missing variable go back to the queue once their
    /// mapping has all it needs (after a restart or a reload).
    @discardableResult
    public func releaseHeldJobs(mappings: [String], now: Timestamp) throws -> Int {
        guard !mappings.isEmpty else { return 0 }
        return try database.write { db in
            var released = 0
            for mapping in mappings {
                // A job that also runs `after` another mapping keeps waiting for it,
                // unless that mapping's job for the entity is already done.
                try db.execute(sql: """
                    UPDATE jobs SET
                        after_capture = CASE WHEN after_mapping IS NULL THEN after_capture ELSE (
                            SELECT d.capture FROM jobs d WHERE d.mapping = jobs.after_mapping AND d.company_id IS jobs.company_id
                              AND d.subject_id IS jobs.subject_id AND d.state = 'done' ORDER BY d.id DESC LIMIT 1) END,
                        state = CASE WHEN after_mapping IS NULL OR EXISTS (
                            SELECT 1 FROM jobs d WHERE d.mapping = jobs.after_mapping AND d.company_id IS jobs.company_id
                              AND d.subject_id IS jobs.subject_id AND d.state = 'done') THEN 'pending' ELSE 'held' END,
                        last_error = CASE WHEN after_mapping IS NULL OR EXISTS (
                            SELECT 1 FROM jobs d WHERE d.mapping = jobs.after_mapping AND d.company_id IS jobs.company_id
                              AND d.subject_id IS jobs.subject_id AND d.state = 'done') THEN NULL
                            ELSE 'after: waits for ' || after_mapping || ' to succeed for this entity' END,
                        run_at = ?, updated_at = ?
                    WHERE state = 'held' AND mapping = ? AND last_error LIKE 'missing variable%'
                    """, arguments: [now.milliseconds, now.milliseconds, mapping])
                released += db.changesCount
            }
            return released
        }
    }
}
