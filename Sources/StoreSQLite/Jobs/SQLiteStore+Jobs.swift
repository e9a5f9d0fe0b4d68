import Clocks
import Domain
import Foundation
import GRDB
import JSON

extension SQLiteStore: JobStore, RunningJobStore {
    /// A write through the writer (claims share job commits). The `dueTime`
    /// lane caps each mapping at `SQLiteStoreOptions.maxRunningPerMapping`
    /// running jobs; a fault of the whole store (full disk, I/O error) throws
    /// instead of setting jobs aside.
    public func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane) async throws -> JobClaim {
        try await writer.perform { [self] db, effects in
            try claim(db: db, owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: lane)
        }
    }

    /// The lane's filter and order; each matches a partial index of pending jobs
    /// (`jobs_pending_due`, `jobs_pending_deadline`), so a claim reads only due work.
    static func laneSQL(_ lane: ClaimLane, table: String = "j") -> (filter: String, order: String) {
        switch lane {
        case .dueTime: return ("AND \(table).deadline IS NULL", "\(table).run_at, \(table).id")
        case .earliestDeadline: return ("AND \(table).deadline IS NOT NULL", "\(table).deadline, \(table).id")
        }
    }

    /// Does nothing if `owner` no longer holds a running lease on the job (it
    /// expired and another runner owns the outcome). `done` also releases the
    /// `after` jobs waiting for this one, in the same write.
    public func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws {
        try await writer.perform { [self] db, _ in
            try complete(db: db, jobID: jobID, owner: owner, completion: completion, now: now)
        }
    }

    /// One writer operation: every outcome (each a no-op where the lease was
    /// lost), then the claim. A failure fails the operation whole (the writer
    /// rolls it back alone; the other operations of the commit stand).
    public func completeAndClaim(
        _ finished: [FinishedAttempt], owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane
    ) async throws -> JobClaim {
        try await writer.perform { [self] db, _ in
            for attempt in finished {
                try complete(db: db, jobID: attempt.jobID, owner: owner, completion: attempt.completion, now: now)
            }
            guard limit > 0 else { return JobClaim(jobs: []) }
            return try claim(db: db, owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: lane)
        }
    }

    /// Does nothing unless `owner` holds the job's lease; throws a
    /// `JobTransitionError` if its state cannot be set aside.
    public func setAside(jobID: Int64, owner: String, reason: String, now: Timestamp) async throws {
        try await writer.perform { [self] db, _ in
            guard let state = try jobState(db: db, id: jobID, owner: owner) else { return }
            try setAside(db: db, jobID: jobID, from: state, reason: reason, now: now)
        }
    }

    /// The job's state if `owner` holds its lease (nil: another runner owns the outcome).
    func jobState(db: Database, id: Int64, owner: String) throws -> JobState? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM jobs WHERE id = ? AND lease_owner = ?"), arguments: [id, owner])
            .flatMap(JobState.init(rawValue:))
    }

    func setAside(db: Database, jobID: Int64, from state: JobState, reason: String, now: Timestamp) throws {
        let target = try state.after(.setAside, jobID: jobID)
        let hold = HoldReason.storeFault(reason)
        try db.cachedStatement(
            sql: """
                UPDATE jobs SET state = ?, hold_reason = ?, hold_detail = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL,
                    updated_at = ? WHERE id = ?
                """
        ).execute(arguments: [target.rawValue, hold.code.rawValue, hold.detail, hold.description, now.milliseconds, jobID])
    }

    /// Runners that died mid-attempt: re-run what is safe to re-run, park the rest.
    func requeueExpiredLeases(db: Database, now: Timestamp, reason: String, expiredOnly: Bool) throws -> (requeued: Int, inDoubt: Int) {
        var counts: [Int] = []
        for policy in [CrashPolicy.rerun, .hold] {
            let target = try JobState.running.after(.leaseLost(policy))
            let hold: HoldReason? = target == .inDoubt ? .crashedDuringAttempt : nil
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = :target, hold_reason = :hold, hold_detail = NULL, last_error = :reason,
                        lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
                    WHERE state = \(SQL.literal(.running)) AND crash_policy = :policy AND (:all = 1 OR lease_expires_at <= :now)
                    """
            ).execute(arguments: [
                "target": target.rawValue, "hold": hold?.code.rawValue, "reason": reason, "policy": policy.rawValue,
                "all": expiredOnly ? 0 : 1, "now": now.milliseconds,
            ])
            counts.append(db.changesCount)
        }
        return (counts[0], counts[1])
    }

    /// Jobs whose claim failed and whose setting aside failed too: skipped by
    /// this process so they cannot block the queue (reported once each).
    var unclaimable: Set<Int64> { unclaimableJobs.withLock { $0 } }

    /// Runs inside the writer's transaction.
    func claim(db: Database, owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane = .dueTime) throws -> JobClaim {
        let (laneFilter, laneOrder) = SQLiteStore.laneSQL(lane)
        // The deadline lane has its own parallelism; the per-mapping cap guards the shared lane.
        let capPerMapping: Bool = if case .dueTime = lane { true } else { false }
        _ = try requeueExpiredLeases(db: db, now: now, reason: "lease expired: the runner stopped during an attempt", expiredOnly: true)
        // Due jobs, oldest first; a job waits while an older job with the same
        // (mapping, effect key) is unfinished, so one entity's effects run in order.
        // Only what the choice needs is read here; the claimed rows come back
        // from the claiming UPDATE itself.
        let candidates = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT j.id, j.mapping, j.kind, j.on_repeat,
                           (SELECT e.job_id FROM effects e WHERE e.mapping = j.mapping AND e.effect_key = j.effect_key) AS delivered_by
                    FROM jobs j
                    WHERE j.state = \(SQL.literal(.pending)) AND j.run_at <= :now \(laneFilter)
                      AND NOT EXISTS (
                          SELECT 1 FROM jobs o
                          WHERE o.mapping = j.mapping AND o.effect_key = j.effect_key AND o.id < j.id
                            AND o.state IN \(SQL.list(JobState.unfinished)))
                    ORDER BY \(laneOrder)
                    LIMIT :limit
                    """), arguments: ["now": now.milliseconds, "limit": limit * 4])
        var running: [String: Int] = [:]
        for row in try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT mapping, COUNT(*) AS n FROM jobs WHERE state = \(SQL.literal(.running)) GROUP BY mapping
                    """))
        {
            running[row["mapping"]] = row["n"]
        }
        let skipIDs = unclaimable
        // Jobs the ledger lets run as they are are claimed together, in one
        // statement; a job whose effect exists (skip, run an alternative) is
        // settled on its own.
        var plain: [Int64] = []
        var settledAlone: [Int64] = []
        for row in candidates {
            if plain.count + settledAlone.count >= limit { break }
            let id: Int64 = row["id"]
            if skipIDs.contains(id) { continue }
            // No head-of-line blocking: one mapping's endpoint cannot take every slot.
            let rowMapping: String = row["mapping"]
            if capPerMapping && running[rowMapping, default: 0] >= options.maxRunningPerMapping { continue }
            running[rowMapping, default: 0] += 1
            let deliveredBy: Int64? = row["delivered_by"]
            let policy: EffectLedger.StoredPolicy = row["on_repeat"] == RepeatPolicy.send.storedName ? .send : .skip
            if deliveredBy == nil || EffectLedger.decide(jobID: id, kind: row["kind"], deliveredBy: deliveredBy, policy: policy) == .run {
                plain.append(id)
            } else {
                settledAlone.append(id)
            }
        }
        var claimed: [ClaimedJob] = []
        var setAsideJobs: [SetAsideJob] = []
        do {
            claimed = try claimTogether(plain, db: db, owner: owner, now: now, leaseUntil: leaseUntil)
        } catch {
            // A fault of the whole store fails the claim; otherwise one of them
            // is bad: each is tried on its own, so only that one is set aside.
            if StoreWriter.isStorageFailure(error) { throw error }
            settledAlone = plain + settledAlone
        }
        for id in settledAlone {
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT j.id, j.event_id, j.mapping, j.item, j.kind, j.effect_key, j.payload, j.attempts,
                                   j.company_id, j.subject_id, j.created_at, j.first_attempt_at, j.after_mapping, j.after_capture, j.runs_mapping,
                                   CASE WHEN j.after_mapping IS NOT NULL OR j.kind = 'flow' OR j.alt_kind = 'flow' THEN (SELECT body FROM inbox WHERE inbox.id = j.event_id) END
                                       AS event_body,
                                   j.on_repeat, j.alt_mapping, j.alt_kind, j.alt_payload, j.alt_mapping_hash, j.deadline, j.mapping_hash,
                                   j.crash_policy, j.flow_state
                            FROM jobs j WHERE j.id = ? AND j.state = \(SQL.literal(.pending))
                            """), arguments: [id])
            else { continue }
            let rowMapping: String = row["mapping"]
            do {
                // Each job under its own savepoint: a job whose claim fails is set
                // aside and the claim goes on with the others.
                var job: ClaimedJob?
                try db.inSavepoint {
                    job = try claimOne(row, db: db, owner: owner, now: now, leaseUntil: leaseUntil)
                    return .commit
                }
                if let job { claimed.append(job) }
            } catch {
                // A fault of the whole store (full disk, I/O error) concerns every
                // job alike: the claim fails and the runner backs off; only a
                // fault of this one job sets it aside.
                if StoreWriter.isStorageFailure(error) { throw error }
                let reason = "claiming it failed: \(StoreWriter.reason(error))"
                do {
                    try db.inSavepoint {
                        try setAside(db: db, jobID: id, from: .pending, reason: reason, now: now)
                        return .commit
                    }
                } catch {
                    // Not even that: this process leaves the job alone from now on.
                    unclaimableJobs.withLock { _ = $0.insert(id) }
                }
                setAsideJobs.append(SetAsideJob(jobID: id, mapping: rowMapping, reason: reason))
            }
        }
        return JobClaim(jobs: claimed, setAside: setAsideJobs)
    }

    /// Claims `ids` (due, and free to run as they are) in one statement that
    /// returns their rows; the event bodies of `after` jobs in one more. A
    /// statement fails whole: on an error nothing of it was written.
    private func claimTogether(_ ids: [Int64], db: Database, owner: String, now: Timestamp, leaseUntil: Timestamp) throws -> [ClaimedJob] {
        guard !ids.isEmpty else { return [] }
        let idList = "[" + ids.map(String.init).joined(separator: ",") + "]"
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = :target, attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, :now),
                        lease_owner = :owner, lease_expires_at = :until, updated_at = :now
                    WHERE id IN (SELECT value FROM json_each(:ids)) AND state = \(SQL.literal(.pending))
                    RETURNING id, event_id, mapping, runs_mapping, item, kind, effect_key, payload, attempts, company_id, subject_id,
                        created_at, first_attempt_at, after_mapping, after_capture, deadline, mapping_hash, crash_policy, flow_state
                    """),
            arguments: [
                "target": try JobState.pending.after(.claim).rawValue, "now": now.milliseconds, "owner": owner,
                "until": leaseUntil.milliseconds, "ids": idList,
            ])
        var bodies: [Int64: [UInt8]] = [:]
        // `after` jobs and flows render at send time: they need their event's body.
        let waiting = rows.filter { ($0["after_mapping"] as String?) != nil || ($0["kind"] as String) == "flow" }.map { $0["event_id"] as Int64 }
        if !waiting.isEmpty {
            for row in try Row.fetchAll(
                db.cachedStatement(sql: "SELECT id, body FROM inbox WHERE id IN (SELECT value FROM json_each(?)) AND body IS NOT NULL"),
                arguments: ["[" + waiting.map(String.init).joined(separator: ",") + "]"])
            {
                bodies[row["id"]] = [UInt8](row["body"] as Data)
            }
        }
        let order = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return rows.map { row -> ClaimedJob in
            let mapping: String = row["mapping"]
            let eventID: Int64 = row["event_id"]
            var job = ClaimedJob(
                id: row["id"], eventID: eventID, mapping: row["runs_mapping"] ?? mapping, item: row["item"], kind: row["kind"],
                effectKey: row["effect_key"], payload: [UInt8](row["payload"] as Data), attempt: row["attempts"],
                companyID: row["company_id"], subjectID: row["subject_id"],
                createdAt: Timestamp(milliseconds: row["created_at"]),
                firstAttemptAt: (row["first_attempt_at"] as Int64?).map(Timestamp.init(milliseconds:)),
                eventBody: bodies[eventID],
                afterCapture: (row["after_capture"] as Data?).map { [UInt8]($0) },
                deadline: (row["deadline"] as Int64?).map(Timestamp.init(milliseconds:)))
            SQLiteStore.addRunState(row, owner: owner, to: &job)
            return job
        }.sorted { order[$0.id, default: 0] < order[$1.id, default: 0] }
    }

    /// Claims one due job, or settles it through the effect ledger (nil).
    private func claimOne(_ row: Row, db: Database, owner: String, now: Timestamp, leaseUntil: Timestamp) throws -> ClaimedJob? {
        let id: Int64 = row["id"]
        let mapping: String = row["mapping"]
        var runMapping: String = row["runs_mapping"] ?? mapping
        var kind: String = row["kind"]
        var payload: Data = row["payload"]
        var runHash: String? = nil
        let effectKey: String = row["effect_key"]
        let deliveredBy =
            EffectLedger.consultsLedger(kind: kind)
            ? try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT job_id FROM effects WHERE mapping = ? AND effect_key = ?"), arguments: [mapping, effectKey])
            : nil
        switch EffectLedger.decide(jobID: id, kind: kind, deliveredBy: deliveredBy, policy: SQLiteStore.storedPolicy(row)) {
        case .run:
            break
        case .skip(let firstJob):
            let target = try JobState.pending.after(.skipAsDelivered, jobID: id)
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = ?, skipped_for = ?, updated_at = ?, last_error = 'effect already delivered by job ' || ?
                    WHERE id = ?
                    """
            ).execute(arguments: [target.rawValue, firstJob, now.milliseconds, firstJob, id])
            // What waits for this job waits for an effect that exists: release it
            // with the capture of the job that delivered it.
            let capture = try Data.fetchOne(db.cachedStatement(sql: "SELECT capture FROM jobs WHERE id = ?"), arguments: [firstJob])
            try releaseDependents(
                db: db, mapping: mapping, companyID: row["company_id"], subjectID: row["subject_id"],
                capture: capture.flatMap { try? JSONParser.parse([UInt8]($0), options: .strict) }, now: now)
            return nil
        case .runAlternative(let altMapping, let altKind, let altPayload, let altHash):
            // Run the alternative mapping's rendering instead (e.g. an update); the
            // job stays the job of its own mapping (its row, ordering and ledger key).
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET runs_mapping = ?, kind = ?, payload = ?, mapping_hash = COALESCE(?, mapping_hash), on_repeat = ?,
                        last_error = 'repeat of the effect delivered earlier: runs ' || ? || ' instead'
                    WHERE id = ?
                    """
            ).execute(arguments: [altMapping, altKind, Data(altPayload), altHash, RepeatPolicy.send.storedName, altMapping, id])
            runMapping = altMapping
            kind = altKind
            payload = Data(altPayload)
            runHash = altHash
        }
        let target = try JobState.pending.after(.claim, jobID: id)
        let attempt: Int = row["attempts"] + 1
        let firstAttempt: Int64 = row["first_attempt_at"] ?? now.milliseconds
        try db.cachedStatement(
            sql: """
                UPDATE jobs SET state = ?, attempts = ?, first_attempt_at = ?, lease_owner = ?, lease_expires_at = ?, updated_at = ?
                WHERE id = ?
                """
        ).execute(arguments: [target.rawValue, attempt, firstAttempt, owner, leaseUntil.milliseconds, now.milliseconds, id])
        var job = ClaimedJob(
            id: id, eventID: row["event_id"], mapping: runMapping, item: row["item"], kind: kind,
            effectKey: effectKey, payload: [UInt8](payload), attempt: attempt,
            companyID: row["company_id"], subjectID: row["subject_id"],
            createdAt: Timestamp(milliseconds: row["created_at"]), firstAttemptAt: Timestamp(milliseconds: firstAttempt),
            eventBody: (row["event_body"] as Data?).map { [UInt8]($0) },
            afterCapture: (row["after_capture"] as Data?).map { [UInt8]($0) },
            deadline: (row["deadline"] as Int64?).map(Timestamp.init(milliseconds:)))
        SQLiteStore.addRunState(row, owner: owner, to: &job)
        // An alternative runs with its own version (a flow renders with it).
        if let runHash { job.mappingHash = runHash }
        return job
    }

    /// The version, lease owner, crash policy and flow progress of a claimed row.
    static func addRunState(_ row: Row, owner: String, to job: inout ClaimedJob) {
        job.mappingHash = row["mapping_hash"] ?? ""
        job.leaseOwner = owner
        job.crashPolicy = (row["crash_policy"] as String?).flatMap(CrashPolicy.init(rawValue:)) ?? .hold
        job.flowProgress = (row["flow_state"] as Data?).map { [UInt8]($0) }
    }

    /// A flow's checkpoint: its progress and the crash policy of the step it
    /// sends next, committed before that step is sent; only under the lease.
    public func checkpointFlow(
        jobID: Int64, owner: String, attempt: Int, progress: FlowProgress, crashPolicy: CrashPolicy, now: Timestamp
    ) async throws -> Bool {
        try await writer.perform { db, _ in
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET flow_state = ?, crash_policy = ?, updated_at = ?
                    WHERE id = ? AND lease_owner = ? AND attempts = ? AND state = \(SQL.literal(.running))
                    """
            ).execute(arguments: [Data(JSONWriter.bytes(progress.json)), crashPolicy.rawValue, now.milliseconds, jobID, owner, attempt])
            return db.changesCount == 1
        }
    }

    /// The request an `after` job sends, rendered at send time.
    public func recordSentRequest(jobID: Int64, owner: String, attempt: Int, payload: JSONValue, now: Timestamp) async throws -> Bool {
        try await writer.perform { db, _ in
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET payload = ?, updated_at = ?
                    WHERE id = ? AND lease_owner = ? AND attempts = ? AND state = \(SQL.literal(.running))
                    """
            ).execute(arguments: [Data(JSONWriter.bytes(payload)), now.milliseconds, jobID, owner, attempt])
            return db.changesCount == 1
        }
    }

    /// The mapping file a flow was planned with.
    public func mappingSource(contentHash: String) async throws -> [UInt8]? {
        try await reader.read { db in
            try Data.fetchOne(db, sql: "SELECT source FROM mapping_versions WHERE content_hash = ?", arguments: [contentHash]).map { [UInt8]($0) }
        }
    }

    static func storedPolicy(_ row: Row) -> EffectLedger.StoredPolicy {
        switch row["on_repeat"] as String {
        case RepeatPolicy.send.storedName: return .send
        case RepeatPolicy.alternativeStoredName:
            guard let mapping: String = row["alt_mapping"], let kind: String = row["alt_kind"], let payload: Data = row["alt_payload"] else {
                return .skip
            }
            return .alternative(mapping: mapping, kind: kind, payload: [UInt8](payload), mappingHash: row["alt_mapping_hash"])
        default: return .skip
        }
    }

    /// Only rows still `running` under `owner` move; an empty list writes nothing.
    public func renewLeases(jobIDs: [Int64], owner: String, until: Timestamp) async throws {
        guard !jobIDs.isEmpty else { return }
        try await writer.perform { db, _ in
            for id in jobIDs {
                try db.cachedStatement(sql: "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND state = ?")
                    .execute(arguments: [until.milliseconds, id, owner, JobState.running.rawValue])
            }
        }
    }

    /// Applies `DependencyOutcome` to the jobs of `after` mappings waiting for
    /// `mapping`'s job `jobID` of this entity, now that it is in `state`:
    /// released with `capture`, cancelled with it (and what waits for them), or
    /// told why they still wait.
    func settleDependents(
        db: Database, jobID: Int64, state: JobState, mapping: String, companyID: String?, subjectID: String?, capture: JSONValue?,
        now: Timestamp
    ) throws {
        switch DependencyOutcome.after(state, jobID: jobID, mapping: mapping) {
        case .release?:
            try releaseDependents(db: db, mapping: mapping, companyID: companyID, subjectID: subjectID, capture: capture, now: now)
        case .cancel?:
            try cancelDependents(db: db, jobID: jobID, mapping: mapping, companyID: companyID, subjectID: subjectID, now: now)
        case .keepWaiting(let reason)?:
            try db.cachedStatement(
                sql: """
                    UPDATE jobs INDEXED BY jobs_after SET last_error = ?, updated_at = ?
                    WHERE after_mapping = ? AND company_id IS ? AND subject_id IS ? AND state = ? AND hold_reason = ?
                    """
            ).execute(arguments: [
                reason, now.milliseconds, mapping, companyID, subjectID, JobState.held.rawValue, HoldReason.Code.waitingFor.rawValue,
            ])
        case nil:
            break
        }
    }

    /// Cancels what waits for a cancelled job, and what waits for those in turn
    /// (`after` chains are acyclic: the mapping check refuses cycles; the depth is capped all the same).
    func cancelDependents(db: Database, jobID: Int64, mapping: String, companyID: String?, subjectID: String?, now: Timestamp, depth: Int = 0)
        throws
    {
        guard depth < 32 else { return }
        let waiting = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id, mapping FROM jobs INDEXED BY jobs_after
                    WHERE after_mapping = ? AND company_id IS ? AND subject_id IS ? AND state = ? AND hold_reason = ?
                    """),
            arguments: [mapping, companyID, subjectID, JobState.held.rawValue, HoldReason.Code.waitingFor.rawValue])
        for row in waiting {
            let id: Int64 = row["id"]
            let target = try JobState.held.after(.cancel, jobID: id)
            try db.cachedStatement(sql: "UPDATE jobs SET state = ?, updated_at = ?, last_error = ? WHERE id = ?")
                .execute(arguments: [target.rawValue, now.milliseconds, DependencyOutcome.cancelledWith(jobID: jobID, mapping: mapping), id])
            try cancelDependents(db: db, jobID: id, mapping: row["mapping"], companyID: companyID, subjectID: subjectID, now: now, depth: depth + 1)
        }
    }

    /// Jobs of `after` mappings waiting for `mapping`'s job of this entity become due,
    /// with the capture that the executor puts in scope as `response`.
    func releaseDependents(db: Database, mapping: String, companyID: String?, subjectID: String?, capture: JSONValue?, now: Timestamp) throws {
        try db.cachedStatement(
            sql: """
                UPDATE jobs INDEXED BY jobs_after SET state = ?, run_at = ?, updated_at = ?, last_error = NULL, hold_reason = NULL,
                    hold_detail = NULL, after_capture = ?
                WHERE after_mapping = ? AND company_id IS ? AND subject_id IS ? AND state = ? AND hold_reason = ?
                """
        ).execute(arguments: [
            try JobState.held.after(.release).rawValue, now.milliseconds, now.milliseconds,
            Data(JSONWriter.bytes(capture ?? .object(JSONObject()))), mapping, companyID, subjectID,
            JobState.held.rawValue, HoldReason.Code.waitingFor.rawValue,
        ])
    }

    /// Runs inside the writer's transaction. Each outcome is one UPDATE that
    /// also checks the lease and returns what the ledger and the attempt log need.
    func complete(db: Database, jobID: Int64, owner: String, completion requested: JobCompletion, now: Timestamp) throws {
        var completion = requested
        // `oauth authorize` may have stored a usable credential after this attempt read the store and released
        // the held jobs before this one was held: it runs again now instead of waiting for a release that is over.
        if case .held(.authorizationNeeded(let credential, _)) = completion, try credentialIsUsable(db: db, name: credential, jobID: jobID, now: now)
        {
            completion = .postponed(until: now, reason: "OAuth2 credential \(credential) was authorized during the attempt")
        }
        // Only a running job under this owner's lease moves (else the lease was
        // lost, expired and re-claimed: the other runner owns the outcome).
        let target = try JobState.running.after(completion.transition, jobID: jobID)
        let guardClause = "WHERE id = :id AND lease_owner = :owner AND state = \(SQL.literal(.running))"
        let returning = "RETURNING mapping, effect_key, company_id, subject_id, attempts"
        var arguments: StatementArguments = ["id": jobID, "owner": owner, "state": target.rawValue, "now": now.milliseconds]
        let sql: String
        switch completion {
        case .done(let capture):
            arguments += ["capture": capture.map { Data(JSONWriter.bytes($0)) }]
            sql = """
                UPDATE jobs SET state = :state, capture = :capture, last_error = NULL, hold_reason = NULL, hold_detail = NULL,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now \(guardClause) \(returning)
                """
        case .retry(let at, let reason):
            arguments += ["runAt": at.milliseconds, "reason": reason]
            sql = """
                UPDATE jobs SET state = :state, run_at = :runAt, last_error = :reason, lease_owner = NULL, lease_expires_at = NULL,
                    updated_at = :now \(guardClause) \(returning)
                """
        case .postponed(let until, let reason):
            // Not an attempt: the count goes back down and no attempt record is written.
            arguments += ["runAt": until.milliseconds, "reason": reason]
            sql = """
                UPDATE jobs SET state = :state, run_at = :runAt, last_error = :reason, attempts = MAX(attempts - 1, 0), lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = :now \(guardClause) \(returning)
                """
        case .dead, .held, .expired:
            let hold: HoldReason? = if case .held(let reason) = completion { reason } else { nil }
            // A hold is not part of the retry window: once released, `give_up_after`
            // counts from the next real attempt.
            arguments += [
                "reason": completion.detail, "holdCode": hold?.code.rawValue, "holdDetail": hold?.detail, "isHold": hold != nil,
            ]
            sql = """
                UPDATE jobs SET state = :state, last_error = :reason, hold_reason = :holdCode, hold_detail = :holdDetail,
                    lease_owner = NULL, lease_expires_at = NULL, first_attempt_at = CASE WHEN :isHold THEN NULL ELSE first_attempt_at END,
                    updated_at = :now \(guardClause) \(returning)
                """
        }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) else { return }
        if case .postponed = completion { return }
        let capture: JSONValue? = if case .done(let captured) = completion { captured } else { nil }
        try settleDependents(
            db: db, jobID: jobID, state: target, mapping: row["mapping"], companyID: row["company_id"], subjectID: row["subject_id"],
            capture: capture, now: now)
        if case .done = completion {
            try recordEffect(
                db: db, mapping: row["mapping"], effectKey: row["effect_key"], jobID: jobID, now: now,
                companyID: row["company_id"], subjectID: row["subject_id"])
        }
        try db.cachedStatement(
            sql: """
                INSERT OR REPLACE INTO job_attempts(job_id, attempt, finished_at, outcome, detail) VALUES (?, ?, ?, ?, ?)
                """
        ).execute(arguments: [jobID, row["attempts"] as Int, now.milliseconds, completion.outcomeName, completion.detail])
    }

    /// The effect ledger: one row per delivered (mapping, effect key); the first delivery stays.
    func recordEffect(db: Database, mapping: String, effectKey: String, jobID: Int64, now: Timestamp, companyID: String?, subjectID: String?) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO effects(mapping, effect_key, job_id, completed_at, company_id, subject_id)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(mapping, effect_key) DO NOTHING
                """
        ).execute(arguments: [mapping, effectKey, jobID, now.milliseconds, companyID, subjectID])
    }

    /// At start-up of the one daemon that owns this store (it holds the lock),
    /// every `running` job belongs to a process that is gone: apply the crash
    /// policy now instead of waiting for the leases to run out.
    /// Returns how many jobs were re-queued and parked.
    public func recoverJobsOfDeadRunners(now: Timestamp) async throws -> (requeued: Int, inDoubt: Int) {
        try await writer.perform { [self] db, _ in
            try requeueExpiredLeases(db: db, now: now, reason: "the daemon stopped during an attempt", expiredOnly: false)
        }
    }

    /// The unfinished attempt is not counted: `attempts` goes back down by one.
    public func releaseLeases(owner: String, now: Timestamp) async throws {
        try await writer.perform { db, _ in
            // The attempt never finished: give it back without counting it.
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = ?, attempts = MAX(attempts - 1, 0), lease_owner = NULL,
                        lease_expires_at = NULL, updated_at = ? WHERE state = \(SQL.literal(.running)) AND lease_owner = ?
                    """
            ).execute(arguments: [try JobState.running.after(.giveBack).rawValue, now.milliseconds, owner])
        }
    }

    /// On the reader connection; each an index range lookup.
    public func nextWakeUp(lane: ClaimLane, after: Timestamp) async throws -> Timestamp? {
        // Per lane (a runner must not wake for due jobs it will not claim), and
        // each an index lookup: this runs whenever a runner goes idle.
        let laneFilter = SQLiteStore.laneSQL(lane, table: "jobs").filter
        return try await reader.read { db in
            let due = try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT run_at FROM jobs WHERE state = \(SQL.literal(.pending)) \(laneFilter) AND run_at > ? ORDER BY run_at LIMIT 1
                        """), arguments: [after.milliseconds])
            let lease = try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT lease_expires_at FROM jobs WHERE state = \(SQL.literal(.running)) AND lease_expires_at > ?
                        ORDER BY lease_expires_at LIMIT 1
                        """), arguments: [after.milliseconds])
            return [due, lease].compactMap { $0 }.min().map(Timestamp.init(milliseconds:))
        }
    }
}

extension SQLiteStore {
    /// On the reader connection; two index lookups (the lane's pending jobs by
    /// due time, running jobs by lease expiry).
    public func mayHaveWork(lane: ClaimLane, now: Timestamp) async throws -> Bool {
        let laneFilter = SQLiteStore.laneSQL(lane, table: "jobs").filter
        return try await reader.read { db in
            try Bool.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM jobs WHERE state = \(SQL.literal(.pending)) \(laneFilter) AND run_at <= :now)
                            OR EXISTS (SELECT 1 FROM jobs WHERE state = \(SQL.literal(.running)) AND lease_expires_at <= :now)
                        """), arguments: ["now": now.milliseconds]) ?? true
        }
    }
}

/// Read-side queries for the CLI and metrics.
extension SQLiteStore {
    /// One job row as `jobs` lists it.
    public struct JobSummary: Sendable, Hashable {
        /// The job's id, as operator commands take it.
        public var id: Int64
        /// The inbox event it was planned for (what `replay` takes).
        public var eventID: Int64
        /// The job's own mapping (not an alternative it runs instead).
        public var mapping: String
        /// The stored `JobState` raw value (`in_doubt`, `set_aside`, …).
        public var state: String
        /// Attempts started so far (a given-back attempt is not counted).
        public var attempts: Int
        /// The ledger key within `mapping`.
        public var effectKey: String
        /// As stored, not redacted again here: the CLI shows it through `Redactor.redactPatterns`.
        public var lastError: String?
        /// For a `skipped` job: the job that delivered the effect.
        public var skippedFor: Int64?
    }

    /// Jobs in id order, filtered by raw state and mapping, at most `limit`; on the reader connection.
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
                JobSummary(
                    id: row["id"], eventID: row["event_id"], mapping: row["mapping"], state: row["state"],
                    attempts: row["attempts"], effectKey: row["effect_key"], lastError: row["last_error"],
                    skippedFor: row["skipped_for"])
            }
        }
    }

    /// Job counts of the gauged states (`JobState.gauged`) and the age in
    /// milliseconds of the oldest pending or running job (for metrics).
    public func jobStatistics(now: Timestamp) async throws -> (counts: [String: Int], oldestPendingAge: Int64?) {
        try await reader.read { db in
            var counts: [String: Int] = [:]
            // Unbounded terminal states (done, skipped, cancelled) are not counted here:
            // this runs every second and must stay proportional to the open queue.
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT state, COUNT(*) AS n FROM jobs WHERE state IN \(SQL.list(JobState.gauged)) GROUP BY state
                    """)
            {
                counts[row["state"]] = row["n"]
            }
            let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM jobs WHERE state IN \(SQL.list([.pending, .running]))")
            return (counts, oldest.map { now.milliseconds - $0 })
        }
    }

    /// Rows in one of a fixed list of tables, else `StoreError.notFound`: the
    /// name goes into the SQL text, so it is checked against the list first.
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

    /// Jobs held for a missing variable or a configuration fault (e.g. client
    /// credentials a token endpoint refused) go back to the queue once their
    /// mapping has all it needs (after a restart or a reload): a fixed
    /// secret takes effect without a `jobs retry`, and one still wrong holds them again.
    @discardableResult
    public func releaseHeldJobs(mappings: [String], now: Timestamp) async throws -> Int {
        guard !mappings.isEmpty else { return 0 }
        return try await writer.perform { db, _ in
            let held = JobState.held.rawValue
            let pending = try JobState.held.after(.release).rawValue
            let done = JobState.done.rawValue
            var released = 0
            for mapping in mappings {
                // A job that also runs `after` another mapping keeps waiting for it,
                // unless that mapping's job for the entity is already done.
                let ids = try Int64.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT id FROM jobs WHERE state = \(SQL.literal(.held)) AND mapping = ? AND hold_reason IN (?, ?)
                            """), arguments: [mapping, HoldReason.Code.missingVariables.rawValue, HoldReason.Code.configuration.rawValue])
                for id in ids {
                    let row = try Row.fetchOne(
                        db.cachedStatement(
                            sql: """
                                SELECT j.after_mapping, (SELECT d.capture FROM jobs d WHERE d.mapping = j.after_mapping AND d.company_id IS j.company_id
                                      AND d.subject_id IS j.subject_id AND d.state = ? ORDER BY d.id DESC LIMIT 1) AS capture,
                                    EXISTS (SELECT 1 FROM jobs d WHERE d.mapping = j.after_mapping AND d.company_id IS j.company_id
                                      AND d.subject_id IS j.subject_id AND d.state = ?) AS after_done
                                FROM jobs j WHERE j.id = ?
                                """), arguments: [done, done, id])
                    let after: String? = row?["after_mapping"]
                    let afterDone: Bool = row?["after_done"] ?? false
                    if let after, !afterDone {
                        let hold = HoldReason.waitingFor(mapping: after)
                        try db.cachedStatement(
                            sql: """
                                UPDATE jobs SET hold_reason = ?, hold_detail = ?, last_error = ?, updated_at = ? WHERE id = ? AND state = ?
                                """
                        ).execute(arguments: [hold.code.rawValue, hold.detail, hold.description, now.milliseconds, id, held])
                    } else {
                        try db.cachedStatement(
                            sql: """
                                UPDATE jobs SET state = ?, hold_reason = NULL, hold_detail = NULL, last_error = NULL, run_at = ?, updated_at = ?,
                                    after_capture = CASE WHEN after_mapping IS NULL THEN after_capture ELSE ? END
                                WHERE id = ? AND state = ?
                                """
                        ).execute(arguments: [pending, now.milliseconds, now.milliseconds, row?["capture"] as Data?, id, held])
                        released += db.changesCount
                    }
                }
            }
            return released
        }
    }
}
