import Clocks
import JSON
import Mapping

/// How far a flow's job got: the steps that ended, with what they captured,
/// and the step to send next (in flight while the job runs). Stored with the
/// job at every checkpoint, so a crash resumes at the step that was running
/// and a finished step is never sent again. Pure value; the store keeps its
/// JSON, the flow executor and the operator commands read it.
public struct FlowProgress: Sendable, Hashable {
    /// How one step ended.
    public enum StepOutcome: String, Sendable, Hashable {
        /// Its answer counted as success.
        case succeeded
        /// Its effect existed already (`already_done`).
        case alreadyDone = "already_done"
        /// It found the whole flow done (`finish`): no later step was sent.
        case finished
        /// Its condition was false: not sent.
        case skipped
        /// Its answer was lost in a crash and an operator said it was delivered.
        case resolvedByOperator = "resolved_by_operator"

        /// How a step that answered with `outcome` ended; `nil` when it did
        /// not end (a retry) or the flow fails there.
        public init?(answered outcome: ResponseOutcome) {
            switch outcome {
            case .success: self = .succeeded
            case .alreadyDone: self = .alreadyDone
            case .finish: self = .finished
            case .retry, .fail: return nil
            }
        }
    }

    /// One ended step.
    public struct Step: Sendable, Hashable {
        /// The step's name in the mapping.
        public var name: String
        /// How it ended.
        public var outcome: StepOutcome
        /// The answer's status, when there was one.
        public var status: Int?
        /// What the mapping's `capture` took (ids, by the mapping's choice).
        public var captures: JSONObject
        /// When it ended (unix ms).
        public var at: Int64

        /// A step as it ended.
        public init(name: String, outcome: StepOutcome, status: Int? = nil, captures: JSONObject = JSONObject(), at: Int64) {
            self.name = name
            self.outcome = outcome
            self.status = status
            self.captures = captures
            self.at = at
        }
    }

    /// Why the flow failed, once a step failed for good: what `on_failure` reads.
    public struct Failure: Sendable, Hashable {
        /// The step that failed.
        public var step: String
        /// The reason the job ends with (redacted: no personal data).
        public var reason: String
        /// Whether `on_failure` was sent (it is sent once).
        public var noticeSent: Bool

        /// A failure as recorded.
        public init(step: String, reason: String, noticeSent: Bool = false) {
            self.step = step
            self.reason = reason
            self.noticeSent = noticeSent
        }
    }

    /// Ended steps, in the order they ended.
    public var steps: [Step]
    /// The step to send next, in flight while the job runs; `nil` before the
    /// first checkpoint and once the flow is through.
    public var next: String?
    /// Set once a step failed for good (then only `on_failure` is sent).
    public var failure: Failure?
    /// Added to every step's default idempotency key: set by a forced replay,
    /// so a downstream that deduplicates on keys takes the resend as new.
    public var keySuffix: String = ""

    /// Progress as stored.
    public init(steps: [Step] = [], next: String? = nil, failure: Failure? = nil, keySuffix: String = "") {
        self.steps = steps
        self.next = next
        self.failure = failure
        self.keySuffix = keySuffix
    }

    /// A flow that `replay --force` sends again from its first step, with new keys.
    public static func forcedResend(at now: Timestamp) -> FlowProgress {
        FlowProgress(keySuffix: ":replay-\(now.milliseconds)")
    }

    /// Whether `name` has ended (it is never sent again).
    public func hasEnded(_ name: String) -> Bool { steps.contains { $0.name == name } }

    /// Whether a step found the whole flow done.
    public var isFinished: Bool { steps.contains { $0.outcome == .finished } }

    /// What templates read as `steps`: each ended step's captures plus
    /// `outcome` (`succeeded`, `already_done`, `finished`, `skipped`, `resolved_by_operator`).
    public var scopeValue: JSONValue {
        var object = JSONObject()
        for step in steps {
            var entry = step.captures
            entry["outcome"] = .string(step.outcome.rawValue)
            object[step.name] = .object(entry)
        }
        return .object(object)
    }

    /// What `on_failure` reads as `failure`: `{step, reason, steps_done}`.
    public var failureValue: JSONValue? {
        guard let failure else { return nil }
        let done: [JSONValue] = steps.filter { $0.outcome != .skipped }.map { .string($0.name) }
        return ["step": .string(failure.step), "reason": .string(failure.reason), "steps_done": .array(done)]
    }

    /// An operator's word on the step that was in flight when the runner died:
    /// delivered (ended, with the values the downstream created, so the flow
    /// goes on from the step after it) or not (sent again). `nil` when no step
    /// was in flight.
    public func resolvingStepInFlight(delivered: Bool, captures: JSONObject, now: Timestamp) -> FlowProgress? {
        if failure != nil {
            // What was in flight is `on_failure`: delivered means it was sent.
            var resolved = self
            if delivered { resolved.failure?.noticeSent = true }
            return resolved
        }
        guard let next else { return nil }
        guard delivered else { return self }
        var resolved = self
        resolved.steps.append(Step(name: next, outcome: .resolvedByOperator, captures: captures, at: now.milliseconds))
        resolved.next = nil
        return resolved
    }

    /// `jobs retry` of a failed flow (and a replay that re-renders it): it
    /// resumes at the failed step, and a new failure sends `on_failure` again.
    public func retried() -> FlowProgress {
        var retried = self
        retried.failure = nil
        return retried
    }

    /// What retention keeps of an old flow: which steps ended and how, not
    /// what they captured. A retry then never sends a finished step again
    /// (a later step that needs a purged capture fails, naming it).
    public func withoutCaptures() -> FlowProgress {
        var kept = self
        for index in kept.steps.indices { kept.steps[index].captures = JSONObject() }
        if kept.failure != nil { kept.failure?.reason = "" }
        return kept
    }

    /// One line for the operator: each ended step with its captures, the step
    /// in flight, the failure. Captured values are ids by the mapping's choice;
    /// they are masked by pattern all the same.
    public var summary: String {
        var parts: [String] = steps.map { step in
            let captured = step.captures.members.filter { !$0.value.isNull }.map {
                "\($0.key) \(Redactor.redactPatterns(JSONValue.plainText($0.value)))"
            }
            let what = step.outcome == .succeeded ? "done" : step.outcome.rawValue.replacingOccurrences(of: "_", with: " ")
            return captured.isEmpty ? "\(step.name) \(what)" : "\(step.name) \(what) (\(captured.joined(separator: ", ")))"
        }
        if let failure {
            parts.append("\(failure.step) failed")
        } else if let next {
            parts.append("\(next) next")
        }
        return parts.joined(separator: "; ")
    }

    /// What a failed flow had already done, for its reason ("created:
    /// create_person (person_id P-1)"), or `nil` when nothing was done.
    public var doneBefore: String? {
        let done = steps.filter { $0.outcome != .skipped }
        guard !done.isEmpty else { return nil }
        return done.map { step in
            let captured = step.captures.members.filter { !$0.value.isNull }.map {
                "\($0.key) \(Redactor.redactPatterns(JSONValue.plainText($0.value)))"
            }
            return captured.isEmpty ? step.name : "\(step.name) (\(captured.joined(separator: ", ")))"
        }.joined(separator: ", ")
    }

    // MARK: Stored form

    /// The JSON the store keeps.
    public var json: JSONValue {
        var object = JSONObject()
        object["steps"] = .array(
            steps.map { step in
                var entry = JSONObject()
                entry["name"] = .string(step.name)
                entry["outcome"] = .string(step.outcome.rawValue)
                if let status = step.status { entry["status"] = .number(JSONNumber(Int64(status))) }
                entry["captures"] = .object(step.captures)
                entry["at"] = .number(JSONNumber(step.at))
                return .object(entry)
            })
        if let next { object["next"] = .string(next) }
        if !keySuffix.isEmpty { object["key_suffix"] = .string(keySuffix) }
        if let failure {
            object["failure"] = [
                "step": .string(failure.step), "reason": .string(failure.reason), "notice_sent": .bool(failure.noticeSent),
            ]
        }
        return .object(object)
    }

    /// Reads the stored JSON; `nil` when it is not a flow's progress.
    public init?(json: JSONValue) {
        guard case .array(let items)? = json["steps"] else { return nil }
        var steps: [Step] = []
        for item in items {
            guard let name = item["name"]?.stringValue, let outcome = item["outcome"]?.stringValue.flatMap(StepOutcome.init(rawValue:)) else {
                return nil
            }
            steps.append(
                Step(
                    name: name, outcome: outcome, status: item["status"]?.numberValue?.int64Value.map(Int.init),
                    captures: item["captures"]?.objectValue ?? JSONObject(), at: item["at"]?.numberValue?.int64Value ?? 0))
        }
        self.steps = steps
        self.next = json["next"]?.stringValue
        self.keySuffix = json["key_suffix"]?.stringValue ?? ""
        if let failure = json["failure"], let step = failure["step"]?.stringValue {
            self.failure = Failure(
                step: step, reason: failure["reason"]?.stringValue ?? "", noticeSent: failure["notice_sent"]?.boolValue ?? false)
        }
    }

    /// Reads stored bytes: absent or unreadable bytes are a flow that has not started.
    public init(stored bytes: [UInt8]?) {
        self = bytes.flatMap { try? JSONParser.parse($0, options: .strict) }.flatMap(FlowProgress.init(json:)) ?? FlowProgress()
    }
}

/// What executors write while a job runs, under its lease: a flow's
/// checkpoints (each committed, fsync'd, before the next step is sent), the
/// request an `after` job sends (rendered at send time, so `jobs show` shows
/// what went out), and the mapping version a flow started with. The SQLite
/// store implements it (the PostgreSQL store will too).
public protocol RunningJobStore: Sendable {
    /// Replaces the stored request with the one about to be sent, if `owner`
    /// still holds the lease; `false` when it does not.
    func recordSentRequest(jobID: Int64, owner: String, attempt: Int, payload: JSONValue, now: Timestamp) async throws -> Bool
    /// Stores `progress` and the crash policy of the step sent next, if
    /// `owner` still holds the job's lease for this `attempt`; `false` when
    /// it does not (the attempt must stop: another claim owns the job now,
    /// also one by the same process after its lease ran out).
    func checkpointFlow(jobID: Int64, owner: String, attempt: Int, progress: FlowProgress, crashPolicy: CrashPolicy, now: Timestamp)
        async throws -> Bool
    /// The mapping file bytes stored for a content hash, if any.
    func mappingSource(contentHash: String) async throws -> [UInt8]?
}
