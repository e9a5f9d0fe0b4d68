import Clocks
import Domain
import Foundation
import GRDB
import JSON

/// What operators do by hand (`jobs show|retry|resolve|cancel`, `replay`),
/// beside a running daemon: short transactions on their own connection.
extension SQLiteStore: OperatorJobStore {
    /// Everything `jobs show` prints about one job. Times are Unix milliseconds.
    public struct JobDetail: Sendable {
        /// The fields `jobs` lists.
        public var summary: JobSummary
        /// The executor kind as stored (an alternative's once it ran instead).
        public var kind: String
        /// See `PlannedJob.item`.
        public var item: String
        /// The rendered request as stored (`{}` once retention or erasure cleared it).
        public var payload: String
        /// The captured response of a `done` job, if any.
        public var capture: String?
        /// A flow's progress at its last checkpoint.
        public var flowProgress: FlowProgress?
        /// The row's creation (for routed jobs, the event's receipt time).
        public var createdAt: Int64
        /// The last write to the row.
        public var updatedAt: Int64
        /// When the job is or was next due.
        public var runAt: Int64
        /// Every recorded attempt in order, with its outcome word (`JobCompletion.outcomeName`) and detail.
        public var attempts: [(attempt: Int, finishedAt: Int64, outcome: String, detail: String?)]
    }

    /// Why an operator command was refused; nothing was written.
    public enum OperatorError: Error, CustomStringConvertible {
        case noSuchJob(Int64)
        case wrongState(JobTransitionError)

        public var description: String {
            switch self {
            case .noSuchJob(let id): return "no job \(id)"
            case .wrongState(let error): return error.description
            }
        }
    }

    /// The job's state and the state `transition` leads to, as the domain allows it.
    func transition(_ transition: JobTransition, jobID: Int64, db: Database) throws -> (from: JobState, to: JobState) {
        guard let text = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [jobID]),
            let state = JobState(rawValue: text)
        else { throw OperatorError.noSuchJob(jobID) }
        do {
            return (state, try state.after(transition, jobID: jobID))
        } catch {
            throw OperatorError.wrongState(error)
        }
    }

    /// On the reader connection; throws `OperatorError.noSuchJob` for an unknown id.
    public func job(id: Int64) throws -> JobDetail {
        try reader.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]) else { throw OperatorError.noSuchJob(id) }
            let attempts = try Row.fetchAll(
                db, sql: "SELECT attempt, finished_at, outcome, detail FROM job_attempts WHERE job_id = ? ORDER BY attempt", arguments: [id]
            )
            .map {
                (
                    attempt: $0["attempt"] as Int, finishedAt: $0["finished_at"] as Int64, outcome: $0["outcome"] as String,
                    detail: $0["detail"] as String?
                )
            }
            let summary = JobSummary(
                id: row["id"], eventID: row["event_id"], mapping: row["mapping"], state: row["state"], attempts: row["attempts"],
                effectKey: row["effect_key"], lastError: row["last_error"], skippedFor: row["skipped_for"])
            return JobDetail(
                summary: summary, kind: row["kind"], item: row["item"],
                payload: String(decoding: (row["payload"] as Data), as: UTF8.self),
                capture: (row["capture"] as Data?).map { String(decoding: $0, as: UTF8.self) },
                flowProgress: (row["flow_state"] as Data?).map { FlowProgress(stored: [UInt8]($0)) },
                createdAt: row["created_at"], updatedAt: row["updated_at"], runAt: row["run_at"], attempts: attempts)
        }
    }

    /// `dead`, `held`, `cancelled`, `in_doubt` or `set_aside` → `pending` now, same
    /// rendered request and key; the retry window starts again (`first_attempt_at`
    /// cleared). A job of an `after` mapping whose dependency has not delivered
    /// waits for it instead (not counted). All or nothing: one job in another
    /// state fails the whole call. Returns how many were queued.
    @discardableResult
    public func retry(jobIDs: [Int64], now: Timestamp) async throws -> Int {
        try await writer.perform { [self] db, _ in
            var count = 0
            for id in jobIDs {
                let (_, target) = try transition(.operatorRetry, jobID: id, db: db)
                switch try retryAfterJob(jobID: id, db: db, now: now) {
                case .released?:
                    count += 1
                    continue
                case .waits?: continue
                case nil: break
                }
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, run_at = ?, updated_at = ?, hold_reason = NULL, hold_detail = NULL, first_attempt_at = NULL,
                            last_error = 'retried by an operator' WHERE id = ?
                        """, arguments: [target.rawValue, now.milliseconds, now.milliseconds, id])
                try retryFlow(jobID: id, db: db)
                count += 1
            }
            return count
        }
    }

    /// A retried flow resumes at the step that failed (`FlowProgress.retried`).
    func retryFlow(jobID: Int64, db: Database) throws {
        guard let stored = try Data.fetchOne(db, sql: "SELECT flow_state FROM jobs WHERE id = ? AND kind = 'flow'", arguments: [jobID]) else {
            return
        }
        let progress = FlowProgress(stored: [UInt8](stored)).retried()
        try db.execute(sql: "UPDATE jobs SET flow_state = ? WHERE id = ?", arguments: [Data(JSONWriter.bytes(progress.json)), jobID])
    }

    /// What `jobs retry` did to a job of an `after` mapping.
    enum RetryOfAfterJob {
        /// Its dependency's effect exists: queued with that job's capture.
        case released
        /// It does not: the job waits for it (again).
        case waits
    }

    /// A job of an `after` mapping that an operator retries runs only once its
    /// dependency's effect exists: if it does (done, or skipped as delivered),
    /// the job is queued with that job's capture; if not, it waits for it.
    /// `nil` for a job of any other mapping.
    func retryAfterJob(jobID: Int64, db: Database, now: Timestamp) throws -> RetryOfAfterJob? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT after_mapping, company_id, subject_id, hold_reason FROM jobs WHERE id = ? AND after_mapping IS NOT NULL",
                arguments: [jobID]),
            let after: String = row["after_mapping"]
        else { return nil }
        let delivered = try Row.fetchOne(
            db,
            sql: """
                SELECT COALESCE(d.capture, (SELECT f.capture FROM jobs f WHERE f.id = d.skipped_for)) AS capture, d.id
                FROM jobs d WHERE d.mapping = ? AND d.company_id IS ? AND d.subject_id IS ? AND d.state IN (?, ?)
                ORDER BY d.id DESC LIMIT 1
                """,
            arguments: [after, row["company_id"], row["subject_id"], JobState.done.rawValue, JobState.skipped.rawValue])
        if let delivered {
            let (_, target) = try transition(.operatorRetry, jobID: jobID, db: db)
            let capture = (delivered["capture"] as Data?).flatMap { try? JSONParser.parse([UInt8]($0), options: .strict) }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, run_at = ?, updated_at = ?, hold_reason = NULL, hold_detail = NULL, first_attempt_at = NULL,
                        after_capture = ?, last_error = 'retried by an operator' WHERE id = ?
                    """,
                arguments: [
                    target.rawValue, now.milliseconds, now.milliseconds, Data(JSONWriter.bytes(capture ?? .object(JSONObject()))), jobID,
                ])
            return .released
        }
        let (_, target) = try transition(.operatorRetryWaiting, jobID: jobID, db: db)
        let waiting = HoldReason.waitingFor(mapping: after)
        try db.execute(
            sql: """
                UPDATE jobs SET state = ?, hold_reason = ?, hold_detail = ?, updated_at = ?, first_attempt_at = NULL,
                    last_error = 'retried by an operator: still waits for ' || ? || ' to succeed for this entity' WHERE id = ?
                """, arguments: [target.rawValue, waiting.code.rawValue, waiting.detail, now.milliseconds, after, jobID])
        return .waits
    }

    /// Ids of jobs in a raw `state` (of one mapping, or all), in id order: what `jobs retry --dead` takes.
    public func jobIDs(state: String, mapping: String?) throws -> [Int64] {
        try reader.read { db in
            try Int64.fetchAll(
                db, sql: "SELECT id FROM jobs WHERE state = ? AND (? IS NULL OR mapping = ?) ORDER BY id", arguments: [state, mapping, mapping])
        }
    }

    /// An operator decides an `in_doubt` job: delivered (done + ledger) or not (pending, resent with the same key).
    /// With `delivered`, `capture` holds the values the downstream created (its
    /// ids: what the mapping's capture would have taken from the answer the
    /// bridge never saw), stored as the job's capture and handed to the jobs `after` it.
    public func resolve(jobID: Int64, delivered: Bool, capture: JSONValue?, now: Timestamp) async throws {
        try await writer.perform { [self] db, _ in
            let (_, target) = try transition(.resolve(delivered: delivered), jobID: jobID, db: db)
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT mapping, effect_key, company_id, subject_id, kind, flow_state FROM jobs WHERE id = ?", arguments: [jobID])
            else {
                throw OperatorError.noSuchJob(jobID)
            }
            if (row["kind"] as String) == "flow" {
                // A flow goes on: the step in flight is ended with the operator's
                // captures (delivered) or sent again (not delivered).
                let progress = FlowProgress(stored: (row["flow_state"] as Data?).map { [UInt8]($0) })
                let resumed = progress.resolvingStepInFlight(delivered: delivered, captures: capture?.objectValue ?? JSONObject(), now: now)
                let (_, pending) = try transition(.resumeFlow, jobID: jobID, db: db)
                let step = progress.next ?? "none"
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, run_at = ?, updated_at = ?, hold_reason = NULL, hold_detail = NULL, flow_state = ?,
                            last_error = ? WHERE id = ?
                        """,
                    arguments: [
                        pending.rawValue, now.milliseconds, now.milliseconds, Data(JSONWriter.bytes((resumed ?? progress).json)),
                        "resolved by an operator: step \(step) \(delivered ? "delivered" : "not delivered, resend"); the flow goes on", jobID,
                    ])
                return
            }
            if delivered {
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, updated_at = ?, hold_reason = NULL, hold_detail = NULL, capture = ?,
                            last_error = 'resolved by an operator: delivered' WHERE id = ?
                        """, arguments: [target.rawValue, now.milliseconds, capture.map { Data(JSONWriter.bytes($0)) }, jobID])
                try recordEffect(
                    db: db, mapping: row["mapping"], effectKey: row["effect_key"], jobID: jobID, now: now,
                    companyID: row["company_id"], subjectID: row["subject_id"])
                try settleDependents(
                    db: db, jobID: jobID, state: target, mapping: row["mapping"], companyID: row["company_id"], subjectID: row["subject_id"],
                    capture: capture, now: now)
            } else {
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, run_at = ?, updated_at = ?, hold_reason = NULL, hold_detail = NULL,
                            last_error = 'resolved by an operator: not delivered, resend' WHERE id = ?
                        """, arguments: [target.rawValue, now.milliseconds, now.milliseconds, jobID])
            }
        }
    }

    /// Throws `OperatorError.wrongState` unless the job is `pending`, `held`,
    /// `in_doubt`, `dead` or `set_aside` (a running job is not cancelled here).
    public func cancel(jobID: Int64, now: Timestamp) async throws {
        try await writer.perform { [self] db, _ in
            let (_, target) = try transition(.cancel, jobID: jobID, db: db)
            try db.execute(
                sql: "UPDATE jobs SET state = ?, updated_at = ?, last_error = 'cancelled by an operator' WHERE id = ?",
                arguments: [target.rawValue, now.milliseconds, jobID])
            if let row = try Row.fetchOne(db, sql: "SELECT mapping, company_id, subject_id FROM jobs WHERE id = ?", arguments: [jobID]) {
                try settleDependents(
                    db: db, jobID: jobID, state: target, mapping: row["mapping"], companyID: row["company_id"], subjectID: row["subject_id"],
                    capture: nil, now: now)
            }
        }
    }

    /// An inbox event that still has its body, as `replay` needs it.
    public struct StoredEvent: Sendable {
        /// The inbox id; replay adds or updates jobs of this event.
        public var id: Int64
        /// Exactly as received.
        public var body: [UInt8]
        /// When it arrived.
        public var receivedAt: Timestamp
    }

    /// Events with their bodies (purged bodies cannot be replayed).
    public func events(id: Int64?, since: Timestamp?, until: Timestamp?) throws -> [StoredEvent] {
        try reader.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, body, received_at FROM inbox WHERE body IS NOT NULL
                      AND (? IS NULL OR id = ?) AND (? IS NULL OR received_at >= ?) AND (? IS NULL OR received_at < ?)
                    ORDER BY id
                    """, arguments: [id, id, since?.milliseconds, since?.milliseconds, until?.milliseconds, until?.milliseconds]
            ).map {
                StoredEvent(id: $0["id"], body: [UInt8]($0["body"] as Data), receivedAt: Timestamp(milliseconds: $0["received_at"]))
            }
        }
    }

    /// What replay did to one planned job; the raw value is what the CLI prints.
    public enum ReplayAction: String, Sendable {
        case created, rerendered
        case skippedDelivered = "skipped (delivered)"
        case unchanged, forced
    }

    /// A replayed job's label (mapping, or mapping/item) and what replay did to it.
    public struct ReplayOutcome: Sendable {
        /// `mapping`, or `mapping/item` for one of several jobs.
        public var label: String
        /// See `ReplayAction`.
        public var action: ReplayAction
    }

    /// Puts an event's freshly planned jobs into the queue: new mappings get
    /// new jobs, dead/cancelled ones are re-rendered under the same key,
    /// delivered (`done`, `skipped`) ones are left alone unless `force` (then
    /// sent again, with a new idempotency key if the payload carries one);
    /// jobs in any other state are `unchanged`. One write for the whole event.
    public func replay(eventID: Int64, jobs planned: [PlannedJob], envelope: WebhookEnvelope, force: Bool, now: Timestamp) async throws
        -> [ReplayOutcome]
    {
        try await writer.perform { db, _ in
            var actions: [ReplayOutcome] = []
            // A re-rendered flow runs with the version that rendered it now.
            for job in planned { try SQLiteStore.recordMappingVersion(of: job, db: db, now: now) }
            for job in planned {
                let label = job.item.isEmpty ? job.mapping : "\(job.mapping)/\(job.item)"
                let existing = try Row.fetchOne(
                    db, sql: "SELECT id, state FROM jobs WHERE event_id = ? AND mapping = ? AND item = ?",
                    arguments: [eventID, job.mapping, job.item])
                var payload = job.payload
                guard let existing else {
                    // The same insert as routing's, so a replayed job keeps every planned column.
                    _ = try self.insertJobs(
                        [job], eventID: eventID, companyID: envelope.companyID, subjectID: envelope.subjectID, receivedAt: now, db: db)
                    actions.append(ReplayOutcome(label: label, action: .created))
                    continue
                }
                let id: Int64 = existing["id"]
                let state = JobState(rawValue: existing["state"] as String)
                if let state, JobTransition.rerender(into: job.initialState).sources.contains(state) {
                    let target = try state.after(.rerender(into: job.initialState), jobID: id)
                    try db.execute(
                        sql: """
                            UPDATE jobs SET payload = ?, mapping_hash = ?, kind = ?, state = ?, last_error = ?, hold_reason = ?, hold_detail = ?,
                                runs_mapping = NULL, first_attempt_at = NULL, run_at = ?, updated_at = ?,
                                on_repeat = ?, alt_mapping = ?, alt_kind = ?, alt_payload = ?, alt_mapping_hash = ? WHERE id = ?
                            """,
                        arguments: [
                            Data(JSONWriter.bytes(payload)), job.mappingHash, job.kind, target.rawValue,
                            job.reason ?? job.holdReason?.description ?? "replayed", job.holdReason?.code.rawValue,
                            job.holdReason?.detail, now.milliseconds, now.milliseconds,
                        ]
                            + SQLiteStore.repeatColumns(job.onRepeat) + [id])
                    // A re-rendered flow keeps its ended steps and resumes at the failed one.
                    try self.retryFlow(jobID: id, db: db)
                    actions.append(ReplayOutcome(label: label, action: .rerendered))
                } else if let state, JobTransition.forceResend.sources.contains(state) {
                    guard force else {
                        actions.append(ReplayOutcome(label: label, action: .skippedDelivered))
                        continue
                    }
                    if case .object(var object) = payload, object["idempotency_key"] != nil {
                        object["idempotency_key"] = .string(EffectLedger.forcedResendKey(mapping: job.mapping, effectKey: job.effectKey, at: now))
                        payload = .object(object)
                    }
                    // A forced flow starts over at its first step, each step with a new key.
                    let restarted = job.kind == "flow" ? Data(JSONWriter.bytes(FlowProgress.forcedResend(at: now).json)) : nil
                    try db.execute(
                        sql: """
                            UPDATE jobs SET payload = ?, mapping_hash = ?, kind = ?, state = ?, on_repeat = ?, skipped_for = NULL, runs_mapping = NULL,
                                first_attempt_at = NULL, last_error = 'forced replay: sent again with a new idempotency key', run_at = ?, updated_at = ?,
                                flow_state = CASE WHEN kind = 'flow' THEN ? ELSE flow_state END
                            WHERE id = ?
                            """,
                        arguments: [
                            Data(JSONWriter.bytes(payload)), job.mappingHash, job.kind, try state.after(.forceResend, jobID: id).rawValue,
                            RepeatPolicy.send.storedName, now.milliseconds, now.milliseconds, restarted, id,
                        ])
                    actions.append(ReplayOutcome(label: label, action: .forced))
                } else {
                    actions.append(ReplayOutcome(label: label, action: .unchanged))
                }
            }
            return actions
        }
    }
}
