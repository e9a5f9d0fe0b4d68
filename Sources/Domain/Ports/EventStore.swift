import Clocks
import JSON

/// What the receiver hands the store for one webhook: the body exactly as
/// received plus what was read from it.
public struct IngestItem: Sendable {
    /// What the body turned out to be: an event for the inbox or a quarantined body.
    public enum Content: Sendable {
        /// A well-formed envelope, stored in the inbox. With `routeAfterCommit`
        /// a `routed` event only enters the routing queue and `jobs` is ignored
        /// (the receiver passes none: `EventRoutingService` creates them in a
        /// later write); otherwise `jobs` are inserted in the event's own commit.
        /// `company` updates the company's snapshot in that same commit.
        case event(WebhookEnvelope, disposition: EventDisposition, jobs: [PlannedJob], company: CompanySnapshot?)
        /// Authenticated but unusable: kept whole for replay, never routed.
        case quarantine(reason: String)
    }

    /// Exactly as received; its SHA-256 is the duplicate filter (a second copy is not stored again).
    public var body: [UInt8]
    /// When the webhook arrived; its jobs carry it as their creation and first due time.
    public var receivedAt: Timestamp
    /// What the receiver made of the body; the store does not read the body again.
    public var content: Content
    /// Store the event now and create its jobs after the commit (`RoutingQueue`):
    /// the acknowledgement then waits for the event's own row only, never for
    /// mapping evaluation or job rows. Only `routed` events are queued.
    public var routeAfterCommit: Bool

    /// `routeAfterCommit` defaults to false: jobs in `content` are committed with the event.
    public init(body: [UInt8], receivedAt: Timestamp, content: Content, routeAfterCommit: Bool = false) {
        self.routeAfterCommit = routeAfterCommit
        self.body = body
        self.receivedAt = receivedAt
        self.content = content
    }
}

/// Why an event has (or has no) jobs.
public enum EventDisposition: String, Sendable, Codable {
    /// Routed to every matching mapping (possibly none matched): after the
    /// commit by `EventRoutingService` when queued (`routeAfterCommit`), else
    /// with the jobs given at ingest.
    case routed
    /// An event type/action nobody documented: kept and counted, replayable later.
    case unrouted
    /// Its company is not on the allow-list: kept, not routed.
    case parked
}

/// The latest known facts about a company (from `company/signup`); mappings
/// may read them. Latest received wins.
public struct CompanySnapshot: Sendable, Hashable {
    /// Jobylon's `company_id`: the key of the stored snapshot.
    public var id: String
    /// `internal_id`, as text (a number keeps its lexeme).
    public var internalID: String?
    /// `company_name`.
    public var name: String?
    /// `settings` exactly as sent (any JSON).
    public var settings: JSONValue?

    /// A snapshot from known fields (e.g. read back from the store).
    public init(id: String, internalID: String?, name: String?, settings: JSONValue?) {
        self.id = id
        self.internalID = internalID
        self.name = name
        self.settings = settings
    }

    /// Reads a `company/signup` event's `data`.
    public init?(signupData data: JSONValue) {
        guard let id = data["company_id"]?.stringValue, !id.isEmpty else { return nil }
        self.id = id
        self.internalID = data["internal_id"]?.numberValue?.lexeme ?? data["internal_id"]?.stringValue
        self.name = data["company_name"]?.stringValue
        self.settings = data["settings"]
    }
}

/// The store's answer; the receiver turns it into the HTTP status.
public enum IngestOutcome: Sendable, Hashable {
    /// Committed and fsync'd: only now may the sender get a 2XX.
    /// `jobs`: those created in the same commit (none when routed after it).
    case stored(id: Int64, jobs: Int)
    /// The same body was stored before (a transport retry): nothing new is
    /// written or routed; `id` is the first copy's.
    case duplicate(id: Int64)
    /// Committed to quarantine, kept for replay; `duplicate` when the same body was already there.
    case quarantined(id: Int64, duplicate: Bool)
    /// Not stored: the sender must retry (503).
    case unavailable(reason: String)
}

/// The durable inbox. A `stored` answer means the commit reached the disk.
public protocol EventStore: Sendable {
    /// Never throws: whatever keeps the item from the disk is `.unavailable`.
    func ingest(_ item: IngestItem) async -> IngestOutcome
    /// True when a webhook arriving now could be committed.
    func isAcceptingWrites() async -> Bool
}

/// A committed event waiting for its jobs.
public struct UnroutedEvent: Sendable {
    /// The inbox id; its jobs are unique per (this id, mapping, item).
    public var id: Int64
    /// As read when the event was received (stored beside the body).
    public var envelope: WebhookEnvelope
    /// `nil` only if the body is gone although the event is queued (retention
    /// skips queued events and erasure dequeues them): nothing to plan, and the
    /// event is dequeued all the same.
    public var body: [UInt8]?
    /// Handed on unchanged as `RoutedEvent.receivedAt`.
    public var receivedAt: Timestamp

    /// As the store reads it from the routing queue.
    public init(id: Int64, envelope: WebhookEnvelope, body: [UInt8]?, receivedAt: Timestamp) {
        self.id = id
        self.envelope = envelope
        self.body = body
        self.receivedAt = receivedAt
    }
}

/// An event with the jobs its routing planned.
public struct RoutedEvent: Sendable {
    /// The `UnroutedEvent.id` routed; dequeued in the same write as its jobs.
    public var eventID: Int64
    /// The subject keys every job row carries (for retention and erasure).
    public var companyID: String?
    /// The other subject key: the candidate, job or company id (see `companyID`).
    public var subjectID: String?
    /// The event's receipt time: its jobs' `created_at` and first due time.
    public var receivedAt: Timestamp
    /// May be empty (nothing matched, or no body): the event leaves the queue all the same.
    public var jobs: [PlannedJob]
    /// When it was routed: the time of the jobs that end in the routing write
    /// (`PlannedJob.stagedAtCreation`); `receivedAt` if not given.
    public var routedAt: Timestamp

    /// One event's routing, as `RoutingQueue.recordRouting` takes it.
    public init(eventID: Int64, companyID: String?, subjectID: String?, receivedAt: Timestamp, jobs: [PlannedJob], routedAt: Timestamp? = nil) {
        self.routedAt = routedAt ?? receivedAt
        self.eventID = eventID
        self.companyID = companyID
        self.subjectID = subjectID
        self.receivedAt = receivedAt
        self.jobs = jobs
    }
}

/// Events stored `routed` with `routeAfterCommit`, oldest first. Routing them is
/// exactly once: an event's jobs and its removal from the queue commit together,
/// and jobs are unique per (event, mapping, item), so routing again after a
/// crash changes nothing.
public protocol RoutingQueue: Sendable {
    /// Up to `limit` queued events, lowest id first; reading dequeues nothing.
    func unroutedEvents(limit: Int) async throws -> [UnroutedEvent]
    /// Creates the jobs and dequeues the events in one commit; returns the number of jobs created.
    func recordRouting(_ events: [RoutedEvent]) async throws -> Int
}

/// A job the store took out of the queue because claiming it failed.
public struct SetAsideJob: Sendable, Hashable {
    /// The job now `set_aside`.
    public var jobID: Int64
    /// Its mapping, for the runner's alert in the log.
    public var mapping: String
    /// Why its claim failed, as stored on the job (no SQL text or arguments).
    public var reason: String

    /// As the store reports it from a claim.
    public init(jobID: Int64, mapping: String, reason: String) {
        self.jobID = jobID
        self.mapping = mapping
        self.reason = reason
    }
}

/// What one claim took: the jobs to run (the collection itself), and the
/// jobs set aside on the way.
public struct JobClaim: Sendable, RandomAccessCollection {
    /// Each `running` under the claimer's lease: renew it or complete the job before it runs out.
    public var jobs: [ClaimedJob]
    /// Out of the queue in this claim; the runner reports them (an operator decides).
    public var setAside: [SetAsideJob]

    /// `setAside` defaults to none.
    public init(jobs: [ClaimedJob], setAside: [SetAsideJob] = []) {
        self.jobs = jobs
        self.setAside = setAside
    }

    /// The collection is `jobs` only; `setAside` is not iterated.
    public var startIndex: Int { jobs.startIndex }
    /// See `startIndex`.
    public var endIndex: Int { jobs.endIndex }
    /// The claimed job at `position` of `jobs`.
    public subscript(position: Int) -> ClaimedJob { jobs[position] }
}

/// The job queue and effect ledger as the runner sees them.
public protocol JobStore: Sendable {
    /// Claims up to `limit` due jobs under a lease. Jobs whose effect key was
    /// already delivered are marked `skipped` instead of being returned (as
    /// `EffectLedger.decide` says); jobs of runners whose lease ran out are
    /// re-queued or parked `in_doubt`. A job whose claim fails is set aside
    /// (`JobState.setAside`) and reported; the other jobs are claimed.
    func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane) async throws -> JobClaim
    /// Moves the leases of `owner`'s running jobs to `until`; jobs it no longer holds are left alone.
    func renewLeases(jobIDs: [Int64], owner: String, until: Timestamp) async throws
    /// Records an attempt's end; `done` also writes the effect ledger, atomically.
    func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws
    /// Records the ends of `finished` attempts and claims up to `limit` due jobs
    /// of the lane, in one write: a runner's slots are refilled in the same
    /// commit that frees them. Throws if any of it fails, and then writes none
    /// of it (the runner records those outcomes one by one).
    func completeAndClaim(
        _ finished: [FinishedAttempt], owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane
    ) async throws -> JobClaim
    /// Takes a running job of this owner out of the queue for an operator.
    func setAside(jobID: Int64, owner: String, reason: String, now: Timestamp) async throws
    /// Puts this owner's unfinished jobs back to `pending` (graceful shutdown).
    func releaseLeases(owner: String, now: Timestamp) async throws
    /// The earliest time later than `after` at which a job of the lane becomes
    /// due or a lease expires, if any. Jobs due at `after` or before are not
    /// counted: the runner asks after a claim that took what it could, and a
    /// due job it could not take (its mapping at its limit, an older job of the
    /// same entity unfinished) must not wake it again at once.
    func nextWakeUp(lane: ClaimLane, after: Timestamp) async throws -> Timestamp?
    /// Whether a claim of the lane at `now` could find anything: a job of the
    /// lane due by then, or a lease run out. Read without the writer, so a
    /// runner woken by a commit that created no work for it (another lane's
    /// jobs, jobs created already ended) costs no write.
    func mayHaveWork(lane: ClaimLane, now: Timestamp) async throws -> Bool
}

/// An attempt's recorded end: the job and how it ended.
public struct FinishedAttempt: Sendable, Hashable {
    /// The job the runner holds the lease of.
    public var jobID: Int64
    /// What `RetryDecision` made of the attempt.
    public var completion: JobCompletion

    /// The pair, as `completeAndClaim` takes it.
    public init(jobID: Int64, completion: JobCompletion) {
        self.jobID = jobID
        self.completion = completion
    }
}

extension JobStore {
    /// Claims jobs without a deadline, oldest due first.
    public func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> JobClaim {
        try await claimDueJobs(owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: .dueTime)
    }

    /// `nextWakeUp(lane:after:)` for jobs without a deadline.
    public func nextWakeUp(after: Timestamp) async throws -> Timestamp? {
        try await nextWakeUp(lane: .dueTime, after: after)
    }
}
