import JSON

/// The life of a job. Terminal states: `done`, `dead`, `expired`, `skipped`, `cancelled`.
public enum JobState: String, Sendable, CaseIterable, Codable {
    /// Waiting for its due time (first attempt or retry).
    case pending
    /// Claimed by a runner under a lease.
    case running
    case done
    /// Failed for good (permanent error or retries exhausted); `jobs retry` revives it.
    case dead
    /// Waiting for an operator or a configuration change (e.g. a missing secret).
    case held
    /// A runner died while the effect may have reached the downstream, and the
    /// downstream does not honour idempotency keys: an operator decides.
    case inDoubt = "in_doubt"
    /// The effect key was already delivered by another job (see `skippedFor`).
    case skipped
    case cancelled
    /// Its deadline passed before the effect could happen (e.g. a signed file
    /// URL expired before the archive got the file): counted and alerted, never dropped silently.
    case expired

    public var isTerminal: Bool {
        switch self {
        case .done, .dead, .skipped, .cancelled, .expired: return true
        case .pending, .running, .held, .inDoubt: return false
        }
    }
}

/// What to do with a job whose lease ran out (its runner died mid-flight).
public enum CrashPolicy: String, Sendable, Codable {
    /// Run again: the effect is idempotent (e.g. the downstream honours the idempotency key).
    case rerun
    /// Park as `in_doubt` for an operator.
    case hold
}

/// What a job does when its effect key was already delivered.
public enum RepeatPolicy: Sendable, Hashable {
    /// Becomes `skipped`, pointing at the job that delivered the effect (default).
    case skip
    /// Is delivered again.
    case send
    /// Runs another mapping's rendering instead (e.g. an update), delivered as `send`.
    case alternative(mapping: String, kind: String, payload: JSONValue, mappingHash: String)

    /// The stored form of the policy (the alternative's payload is stored apart).
    public var storedName: String {
        switch self {
        case .skip: return "skip"
        case .send: return "send"
        case .alternative: return "alternative"
        }
    }
}

/// A job the router wants created for an event. Rendered once, here, so every
/// retry sends the same bytes.
public struct PlannedJob: Sendable, Hashable {
    public var mapping: String
    /// Distinguishes several jobs of one mapping for one event (e.g. one per file); "" when single.
    public var item: String
    /// Which executor runs it.
    public var kind: String
    /// What "the same effect" means: a later job with a delivered key is skipped.
    public var effectKey: String
    /// The rendered work, without secrets.
    public var payload: JSONValue
    public var mappingHash: String
    public var crashPolicy: CrashPolicy
    /// `pending` normally; `held` (a missing variable, a dependency) or `dead`
    /// (the event could not be rendered) with `reason`, so nothing is lost.
    public var initialState: JobState
    public var reason: String?
    public var onRepeat: RepeatPolicy
    /// Runs once this mapping's job for the same entity is done.
    public var after: String?
    /// When the effect stops being possible (a signed URL's expiry). Jobs with
    /// a deadline run in their own lane, earliest deadline first.
    public var deadline: Timestamp?

    public init(mapping: String, item: String = "", kind: String, effectKey: String, payload: JSONValue, mappingHash: String,
                crashPolicy: CrashPolicy, initialState: JobState = .pending, reason: String? = nil, onRepeat: RepeatPolicy = .skip,
                after: String? = nil, deadline: Timestamp? = nil) {
        self.deadline = deadline
        self.onRepeat = onRepeat
        self.after = after
        self.mapping = mapping
        self.item = item
        self.kind = kind
        self.effectKey = effectKey
        self.payload = payload
        self.mappingHash = mappingHash
        self.crashPolicy = crashPolicy
        self.initialState = initialState
        self.reason = reason
    }
}

/// A job handed to an executor under a lease.
public struct ClaimedJob: Sendable, Hashable {
    public var id: Int64
    public var eventID: Int64
    public var mapping: String
    public var item: String
    public var kind: String
    public var effectKey: String
    public var payload: [UInt8]
    /// 1 on the first attempt.
    public var attempt: Int
    public var companyID: String?
    public var subjectID: String?
    /// When the job was created (for a mapping's `give_up_after`).
    public var createdAt: Timestamp?
    /// For `after` mappings: the event body and the other job's capture, to render with `response` in scope.
    public var eventBody: [UInt8]?
    public var afterCapture: [UInt8]?
    /// See `PlannedJob.deadline`.
    public var deadline: Timestamp?

    public init(id: Int64, eventID: Int64, mapping: String, item: String, kind: String, effectKey: String, payload: [UInt8], attempt: Int,
                companyID: String?, subjectID: String?, createdAt: Timestamp? = nil, eventBody: [UInt8]? = nil, afterCapture: [UInt8]? = nil,
                deadline: Timestamp? = nil) {
        self.deadline = deadline
        self.createdAt = createdAt
        self.eventBody = eventBody
        self.afterCapture = afterCapture
        self.id = id
        self.eventID = eventID
        self.mapping = mapping
        self.item = item
        self.kind = kind
        self.effectKey = effectKey
        self.payload = payload
        self.attempt = attempt
        self.companyID = companyID
        self.subjectID = subjectID
    }
}

/// How an attempt ended, as the runner records it.
public enum JobCompletion: Sendable, Hashable {
    case done(capture: JSONValue?)
    case retry(at: Timestamp, reason: String)
    case dead(reason: String)
    case held(reason: String)
    case expired(reason: String)
}

/// Which due jobs a runner claims, in which order. Jobs with a deadline (the
/// archive's downloads, racing a signed URL's expiry) have their own lane: a
/// backlog of downloads must not delay payroll calls, nor the other way round.
/// Lanes split on the deadline rather than on the kind so each is one small
/// partial index of pending jobs in the store.
public enum ClaimLane: Sendable, Hashable {
    /// Jobs without a deadline, oldest due first.
    case dueTime
    /// Jobs with a deadline, earliest deadline first.
    case earliestDeadline
}

/// Exponential backoff with full jitter, capped; pure so tests can pin it.
public struct RetryPolicy: Sendable, Hashable {
    public var firstDelay: Duration
    public var maxDelay: Duration
    public var maxAttempts: Int

    public init(firstDelay: Duration = .seconds(2), maxDelay: Duration = .seconds(3600), maxAttempts: Int = 25) {
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    /// The delay before attempt `attempt + 1`, given a random fraction in [0, 1).
    public func delay(afterAttempt attempt: Int, jitter: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let base = Double(firstDelay.milliseconds) * Double(1 << exponent)
        let capped = min(base, Double(maxDelay.milliseconds))
        let jittered = max(capped * min(max(jitter, 0), 1), 1)
        return .milliseconds(Int64(jittered))
    }
}
