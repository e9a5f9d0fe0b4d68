import Clocks
import JSON
import Mapping

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
        case .alternative: return RepeatPolicy.alternativeStoredName
        }
    }

    /// The stored name of `.alternative` (its rendering sits in columns of its own).
    public static let alternativeStoredName = "alternative"
}

/// A job the router wants created for an event. Rendered once, here, so every
/// retry sends the same bytes.
public struct PlannedJob: Sendable, Hashable {
    /// The mapping's name; with `item`, unique per event (a second routing of the event creates nothing).
    public var mapping: String
    /// Distinguishes several jobs of one mapping for one event (e.g. one per file); "" when single.
    public var item: String
    /// Which executor runs it.
    public var kind: String
    /// What "the same effect" means: a later job with a delivered key is skipped.
    public var effectKey: String
    /// The rendered work, without secrets.
    public var payload: JSONValue
    /// Which version of the mapping rendered the job: the file's SHA-256 (a fixed tag for built-in routes).
    public var mappingHash: String
    /// What happens if the runner dies mid-attempt.
    public var crashPolicy: CrashPolicy
    /// `pending` normally; `held` (a missing variable, a dependency: see
    /// `holdReason`), `dead` (the event could not be rendered: see `reason`)
    /// or `expired` (its deadline had passed when the event arrived: see
    /// `endingAtCreation`), so nothing is lost.
    public var initialState: JobState
    /// Why a `dead` job could not be rendered, or why an `expired` one ended at once.
    public var reason: String?
    /// What a `held` job waits for.
    public var holdReason: HoldReason?
    /// What the job does if its effect key turns out to be delivered already when it is claimed.
    public var onRepeat: RepeatPolicy
    /// Runs once this mapping's job for the same entity is done.
    public var after: String?
    /// When the effect stops being possible (a signed URL's expiry). Jobs with
    /// a deadline run in their own lane, earliest deadline first.
    public var deadline: Timestamp?
    /// For a flow: its mapping file as compiled, stored once per content hash,
    /// so the flow finishes with the version it started with across reloads.
    public var mappingSource: [UInt8]?
    /// For a `csv` job: its row, ready to stage. The routing write then stages
    /// it and records the job `done` in the same transaction (no claim, slot
    /// or completion of its own), unless an older job of the same effect key
    /// is unfinished: then it waits its turn as a `pending` job, as any other.
    public var stagedAtCreation: RowStaging?

    /// Defaults: a single job, `pending`, skipped as a repeat, no dependency, no deadline.
    public init(
        mapping: String, item: String = "", kind: String, effectKey: String, payload: JSONValue, mappingHash: String,
        crashPolicy: CrashPolicy, initialState: JobState = .pending, reason: String? = nil, holdReason: HoldReason? = nil,
        onRepeat: RepeatPolicy = .skip, after: String? = nil, deadline: Timestamp? = nil
    ) {
        self.holdReason = holdReason
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

    /// The job as it is created when its deadline had passed before its event
    /// arrived (a signed URL that had already expired): `expired` at once,
    /// with the reason the executor would give, because an attempt could
    /// only report the same. It never takes a claim, a slot or a completion
    /// (on a replay of old events, or a re-send of old URLs, these are most
    /// of the archive jobs). A job that could not be rendered stays `dead`.
    public func endingAtCreation(receivedAt: Timestamp) -> PlannedJob {
        guard let deadline, deadline <= receivedAt, initialState != .dead else { return self }
        var job = self
        job.initialState = .expired
        job.holdReason = nil
        job.reason = PlannedJob.expiredReason(deadline: deadline, before: "the webhook arrived")
        return job
    }

    /// Why a job ended `expired`: the one wording for both ends (at creation and at an attempt).
    public static func expiredReason(deadline: Timestamp, before moment: String) -> String {
        "the signed URL expired at \(MappingClock.iso8601(milliseconds: deadline.milliseconds)) before \(moment) (not requested)"
    }
}

/// A job handed to an executor under a lease.
public struct ClaimedJob: Sendable, Hashable {
    /// The job row; what `complete`, `renewLeases` and `setAside` name.
    public var id: Int64
    /// The inbox event the job was planned for.
    public var eventID: Int64
    /// The mapping whose rendering runs: the job's own, or its `on_repeat`
    /// alternative's when the effect was already delivered (the row keeps its own).
    public var mapping: String
    /// See `PlannedJob.item`.
    public var item: String
    /// The executor to run it; the alternative's kind when `mapping` is the alternative.
    public var kind: String
    /// The job's own effect key: the ledger records it under the job's own mapping, also when an alternative runs.
    public var effectKey: String
    /// The stored rendering (JSON bytes): retries send these same bytes.
    public var payload: [UInt8]
    /// 1 on the first attempt.
    public var attempt: Int
    /// The event's company (see `WebhookEnvelope.companyID`).
    public var companyID: String?
    /// The event's subject: candidate, job or company id (see `WebhookEnvelope.subjectID`).
    public var subjectID: String?
    /// The row's `created_at`: the event's receipt time for jobs routing created
    /// (even when routing ran later), the replay's time for jobs a replay added.
    /// Executors read it as the webhook's arrival (e.g. a signed URL's 24-hour fallback lifetime).
    public var createdAt: Timestamp?
    /// When its first attempt started (a mapping's `give_up_after` counts from here,
    /// so days spent `held` for a variable do not use up the retry window).
    public var firstAttemptAt: Timestamp?
    /// For `after` mappings: the event body, to render with `response` (`afterCapture`) in scope; `nil` otherwise.
    public var eventBody: [UInt8]?
    /// The captured response (JSON bytes) of the job this one ran `after`; `nil` for other jobs.
    public var afterCapture: [UInt8]?
    /// See `PlannedJob.deadline`.
    public var deadline: Timestamp?
    /// Which version of the mapping rendered the job (its content hash).
    public var mappingHash: String = ""
    /// The runner that holds the lease (a flow's checkpoints name it).
    public var leaseOwner: String = ""
    /// What a crash during this attempt would do, as stored now.
    public var crashPolicy: CrashPolicy = .hold
    /// A flow's progress so far (`FlowProgress`, JSON bytes); `nil` before its first step.
    public var flowProgress: [UInt8]?

    /// Built by the store when it claims the job; the optional fields default to absent.
    public init(
        id: Int64, eventID: Int64, mapping: String, item: String, kind: String, effectKey: String, payload: [UInt8], attempt: Int,
        companyID: String?, subjectID: String?, createdAt: Timestamp? = nil, firstAttemptAt: Timestamp? = nil,
        eventBody: [UInt8]? = nil, afterCapture: [UInt8]? = nil, deadline: Timestamp? = nil
    ) {
        self.firstAttemptAt = firstAttemptAt
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

/// How an attempt ended, as the runner records it (the retry decision's answer).
public enum JobCompletion: Sendable, Hashable {
    case done(capture: JSONValue?)
    case retry(at: Timestamp, reason: String)
    case dead(reason: String)
    case held(HoldReason)
    case expired(reason: String)
    /// Not attempted (the downstream is paused): due again at `until`, the attempt not counted.
    case postponed(until: Timestamp, reason: String)

    /// The transition the store applies.
    public var transition: JobTransition {
        switch self {
        case .done: return .succeed
        case .retry: return .retryLater
        case .dead: return .fail
        case .held: return .hold
        case .expired: return .expire
        case .postponed: return .giveBack
        }
    }

    /// The text kept as the job's last error and in its attempt record.
    public var detail: String? {
        switch self {
        case .done: return nil
        case .retry(_, let reason), .dead(let reason), .expired(let reason), .postponed(_, let reason): return reason
        case .held(let reason): return reason.description
        }
    }

    /// The attempt record's outcome word.
    public var outcomeName: String {
        switch self {
        case .done: return "done"
        case .retry: return "retry"
        case .dead: return "dead"
        case .held: return "held"
        case .expired: return "expired"
        case .postponed: return "postponed"
        }
    }
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
