import Clocks
import Crypto
import Domain
import Foundation
import GRDB
import GRDBSQLite
import JSON
import Logging
import Synchronization

// The inbox: webhooks committed (and fsync'd) before they are acknowledged,
// and the queue of events routing picks up after the commit.
extension SQLiteStore: EventStore {
    /// Queues the item for the writer's next webhook commit and returns once that
    /// commit is on disk, or `.unavailable` (queue full, shutting down, commit failed).
    public func ingest(_ item: IngestItem) async -> IngestOutcome {
        // Hashed here, in the caller's task, so the single writer only writes.
        let hash = SQLiteStore.sha256(item.body)
        return await writer.submit { [self] db, effects in
            let outcome = try insert(item, hash: hash, db: db)
            if case .stored(_, let jobs) = outcome {
                if jobs > 0 { effects.createdJobs = true }
                if item.routeAfterCommit { effects.queuedEvents = true }
            }
            return outcome
        }
    }

    /// Readiness: false while the writer is unhealthy or stopping; otherwise a
    /// probe row is updated through the writer, so a true answer means a commit just went through.
    public func isAcceptingWrites() async -> Bool {
        guard writer.isHealthy else { return false }
        do {
            // Through the writer: the probe proves that a commit goes through now.
            let at = Int64(Date().timeIntervalSince1970 * 1000)
            try await writer.perform { db, _ in
                try db.cachedStatement(sql: "UPDATE probe SET at = ? WHERE id = 1").execute(arguments: [at])
            }
            return true
        } catch {
            return false
        }
    }

    static func repeatColumns(_ policy: RepeatPolicy) -> StatementArguments {
        switch policy {
        case .skip, .send: return [policy.storedName, nil, nil, nil, nil]
        case .alternative(let mapping, let kind, let payload, let hash):
            return [policy.storedName, mapping, kind, Data(JSONWriter.bytes(payload)), hash]
        }
    }

    /// Inserts one item inside the writer's transaction (under a savepoint only
    /// when a failed batch is replayed). A queued `routed` event gets a routing
    /// queue row instead of jobs; any other event gets the jobs in `item.content` here.
    func insert(_ item: IngestItem, hash: Data, db: Database) throws -> IngestOutcome {
        switch item.content {
        case .quarantine(let reason):
            if let id = try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        INSERT INTO quarantine(body_sha256, received_at, reason, body) VALUES (?, ?, ?, ?)
                        ON CONFLICT(body_sha256) DO NOTHING RETURNING id
                        """), arguments: [hash, item.receivedAt.milliseconds, reason, Data(item.body)])
            {
                return .quarantined(id: id, duplicate: false)
            }
            let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM quarantine WHERE body_sha256 = ?"), arguments: [hash]) ?? 0
            return .quarantined(id: id, duplicate: true)

        case .event(let envelope, let disposition, let jobs, let company):
            guard
                let id = try Int64.fetchOne(
                    db.cachedStatement(
                        sql: """
                            INSERT INTO inbox(body_sha256, received_at, event_type, action, company_id, subject_id, lenient, disposition, body)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT(body_sha256) DO NOTHING RETURNING id
                            """),
                    arguments: [
                        hash, item.receivedAt.milliseconds, envelope.eventType, envelope.action, envelope.companyID,
                        envelope.subjectID, envelope.lenient, disposition.rawValue, Data(item.body),
                    ])
            else {
                let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM inbox WHERE body_sha256 = ?"), arguments: [hash]) ?? 0
                return .duplicate(id: existing)
            }
            var created = 0
            if item.routeAfterCommit && disposition == .routed {
                try db.cachedStatement(sql: "INSERT INTO route_queue(event_id) VALUES (?)").execute(arguments: [id])
            } else {
                created = try insertJobs(
                    jobs, eventID: id, companyID: envelope.companyID, subjectID: envelope.subjectID,
                    receivedAt: item.receivedAt, db: db)
            }
            if let company {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO companies(id, internal_id, name, settings, event_id, received_at) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET internal_id = excluded.internal_id, name = excluded.name,
                            settings = excluded.settings, event_id = excluded.event_id, received_at = excluded.received_at
                        WHERE excluded.received_at >= companies.received_at
                        """
                ).execute(arguments: [
                    company.id, company.internalID, company.name,
                    company.settings.map { Data(JSONWriter.bytes($0)) }, id, item.receivedAt.milliseconds,
                ])
            }
            return .stored(id: id, jobs: created)
        }
    }

    /// Who holds the lease of a job that ends in the write that creates it.
    static let creationOwner = "routing"

    /// Inserts an event's planned jobs (inside the writer's transaction); returns how many were new.
    /// A job with its row to stage (`PlannedJob.stagedAtCreation`) is created
    /// claimed, staged and recorded `done` here, with the same completion as
    /// after an attempt, unless an older job of its effect key is unfinished.
    func insertJobs(
        _ jobs: [PlannedJob], eventID id: Int64, companyID: String?, subjectID: String?, receivedAt: Timestamp, db: Database,
        now: Timestamp? = nil
    ) throws -> Int {
        var created = 0
        var staged: [(jobID: Int64, staging: RowStaging)] = []
        for var job in jobs {
            if let staging = job.stagedAtCreation {
                if job.initialState == .pending, try !hasUnfinishedJob(mapping: job.mapping, effectKey: job.effectKey, db: db) {
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO jobs(event_id, mapping, item, kind, effect_key, company_id, subject_id, payload, mapping_hash,
                                             crash_policy, state, attempts, first_attempt_at, lease_owner, lease_expires_at, run_at, created_at,
                                             updated_at, on_repeat, alt_mapping, alt_kind, alt_payload, alt_mapping_hash, after_mapping, deadline)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT(event_id, mapping, item) DO NOTHING
                            """
                    ).execute(
                        arguments: [
                            id, job.mapping, job.item, job.kind, job.effectKey, companyID, subjectID,
                            Data(JSONWriter.bytes(job.payload)), job.mappingHash, job.crashPolicy.rawValue,
                            try JobState.pending.after(.claim).rawValue, (now ?? receivedAt).milliseconds, SQLiteStore.creationOwner,
                            (now ?? receivedAt).milliseconds, receivedAt.milliseconds, receivedAt.milliseconds, receivedAt.milliseconds,
                        ] + SQLiteStore.repeatColumns(job.onRepeat) + [job.after, job.deadline?.milliseconds])
                    if db.changesCount == 1 {
                        created += 1
                        staged.append((db.lastInsertedRowID, staging))
                    }
                    continue
                }
                job.stagedAtCreation = nil
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO jobs(event_id, mapping, item, kind, effect_key, company_id, subject_id, payload, mapping_hash,
                                     crash_policy, state, last_error, hold_reason, hold_detail, run_at, created_at, updated_at,
                                     on_repeat, alt_mapping, alt_kind, alt_payload, alt_mapping_hash, after_mapping, deadline)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(event_id, mapping, item) DO NOTHING
                    """
            ).execute(
                arguments: [
                    id, job.mapping, job.item, job.kind, job.effectKey, companyID, subjectID,
                    Data(JSONWriter.bytes(job.payload)), job.mappingHash, job.crashPolicy.rawValue,
                    job.initialState.rawValue, job.reason ?? job.holdReason?.description, job.holdReason?.code.rawValue,
                    job.holdReason?.detail, receivedAt.milliseconds, receivedAt.milliseconds,
                    receivedAt.milliseconds,
                ] + SQLiteStore.repeatColumns(job.onRepeat) + [job.after, job.deadline?.milliseconds])
            created += db.changesCount
            try SQLiteStore.recordMappingVersion(of: job, db: db, now: receivedAt)
        }
        // After every job of the event exists, so that one waiting `after` a staged job is released.
        for (jobID, staging) in staged {
            let outcome = try stage(
                db: db,
                StagingRequest(
                    mapping: staging.mapping, period: staging.period, openPeriod: staging.openPeriod, rowKey: staging.rowKey,
                    receivedAt: staging.receivedAt, jobID: jobID, row: JSONWriter.bytes(staging.row), policy: staging.policy,
                    companyID: companyID, subjectID: subjectID))
            try complete(
                db: db, jobID: jobID, owner: SQLiteStore.creationOwner, completion: .done(capture: outcome.capture(policy: staging.policy)),
                now: now ?? receivedAt)
        }
        return created
    }

    /// Whether a job of this effect key is unfinished: a later one waits its turn (one entity's effects run in order).
    func hasUnfinishedJob(mapping: String, effectKey: String, db: Database) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT EXISTS (SELECT 1 FROM jobs WHERE mapping = ? AND effect_key = ? AND state IN \(SQL.list(JobState.unfinished)))
                    """), arguments: [mapping, effectKey]) ?? false
    }

    /// Keeps the mapping file a flow was planned with, once per content hash.
    static func recordMappingVersion(of job: PlannedJob, db: Database, now: Timestamp) throws {
        guard let source = job.mappingSource else { return }
        try db.cachedStatement(
            sql: "INSERT INTO mapping_versions(content_hash, mapping, source, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
        ).execute(arguments: [job.mappingHash, job.mapping, Data(source), now.milliseconds])
    }

    /// Creates routed events' jobs and dequeues them (inside the writer's transaction).
    func route(_ events: [RoutedEvent], db: Database) throws -> Int {
        var created = 0
        for event in events {
            created += try insertJobs(
                event.jobs, eventID: event.eventID, companyID: event.companyID, subjectID: event.subjectID,
                receivedAt: event.receivedAt, db: db, now: event.routedAt)
            try db.cachedStatement(sql: "DELETE FROM route_queue WHERE event_id = ?").execute(arguments: [event.eventID])
        }
        return created
    }
}

extension SQLiteStore: RoutingQueue {
    /// On the reader connection: routing never waits for the writer to read its queue.
    public func unroutedEvents(limit: Int) async throws -> [UnroutedEvent] {
        try await reader.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT q.event_id, i.body, i.received_at, i.event_type, i.action, i.company_id, i.subject_id, i.lenient
                        FROM route_queue q JOIN inbox i ON i.id = q.event_id
                        ORDER BY q.event_id LIMIT ?
                        """), arguments: [limit]
            ).map { row in
                UnroutedEvent(
                    id: row["event_id"],
                    envelope: WebhookEnvelope(
                        eventType: row["event_type"], action: row["action"], companyID: row["company_id"],
                        subjectID: row["subject_id"], lenient: row["lenient"]),
                    body: (row["body"] as Data?).map { [UInt8]($0) }, receivedAt: Timestamp(milliseconds: row["received_at"]))
            }
        }
    }

    /// The whole batch in one write through the writer; wakes the runners when it created jobs.
    public func recordRouting(_ events: [RoutedEvent]) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        return try await writer.perform { [self] db, effects in
            let created = try route(events, db: db)
            if created > 0 { effects.createdJobs = true }
            return created
        }
    }
}
