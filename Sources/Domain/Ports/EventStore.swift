import JSON
import Clocks

/// What the receiver hands the store for one webhook: the body exactly as
/// received plus what was read from it.
public struct IngestItem: Sendable {
    public enum Content: Sendable {
        /// A well-formed envelope: stored in the inbox with its jobs, in one commit.
        case event(WebhookEnvelope, disposition: EventDisposition, jobs: [PlannedJob], company: CompanySnapshot?)
        /// Authenticated but unusable: kept whole for replay, never routed.
        case quarantine(reason: String)
    }

    public var body: [UInt8]
    public var receivedAt: Timestamp
    public var content: Content
    /// Store the event now and create its jobs after the commit (`RoutingQueue`):
    /// the acknowledgement then waits for the event's own row only, never for
    /// mapping evaluation or job rows.
    public var routeAfterCommit: Bool

    public init(body: [UInt8], receivedAt: Timestamp, content: Content, routeAfterCommit: Bool = false) {
        self.routeAfterCommit = routeAfterCommit
        self.body = body
        self.receivedAt = receivedAt
        self.content = content
    }
}

/// Why an event has (or has no) jobs.
public enum EventDisposition: String, Sendable, Codable {
    /// Jobs were created for every matching mapping (possibly none matched).
    case routed
    /// An event type/action nobody documented: kept and counted, replayable later.
    case unrouted
    /// Its company is not on the allow-list: kept, not routed.
    case parked
}

/// The latest known facts about a company (from `company/signup`); mappings
/// may read them. Latest received wins.
public struct CompanySnapshot: Sendable, Hashable {
    public var id: String
    public var internalID: String?
    public var name: String?
    public var settings: JSONValue?

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
    case stored(id: Int64, jobs: Int)
    /// The same body was stored before (a transport retry).
    case duplicate(id: Int64)
    case quarantined(id: Int64, duplicate: Bool)
    /// Not stored: the sender must retry (503).
    case unavailable(reason: String)
}

/// The durable inbox. A `stored` answer means the commit reached the disk.
public protocol EventStore: Sendable {
    func ingest(_ item: IngestItem) async -> IngestOutcome
    /// True when a webhook arriving now could be committed.
    func isAcceptingWrites() async -> Bool
}

/// A committed event waiting for its jobs.
public struct UnroutedEvent: Sendable {
    public var id: Int64
    /// As read when the event was received (stored beside the body).
    public var envelope: WebhookEnvelope
    /// `nil` if retention already removed it (nothing left to route).
    public var body: [UInt8]?
    public var receivedAt: Timestamp

    public init(id: Int64, envelope: WebhookEnvelope, body: [UInt8]?, receivedAt: Timestamp) {
        self.id = id
        self.envelope = envelope
        self.body = body
        self.receivedAt = receivedAt
    }
}

/// An event with the jobs its routing planned.
public struct RoutedEvent: Sendable {
    public var eventID: Int64
    /// The subject keys every job row carries (for retention and erasure).
    public var companyID: String?
    public var subjectID: String?
    public var receivedAt: Timestamp
    public var jobs: [PlannedJob]

    public init(eventID: Int64, companyID: String?, subjectID: String?, receivedAt: Timestamp, jobs: [PlannedJob]) {
        self.eventID = eventID
        self.companyID = companyID
        self.subjectID = subjectID
        self.receivedAt = receivedAt
        self.jobs = jobs
    }
}

/// Events stored with `routeAfterCommit`, in arrival order. Routing them is
/// exactly once: an event's jobs and its removal from the queue commit together,
/// and jobs are unique per (event, mapping, item), so routing again after a
/// crash changes nothing.
public protocol RoutingQueue: Sendable {
    func unroutedEvents(limit: Int) async throws -> [UnroutedEvent]
    /// Creates the jobs and dequeues the events in one commit; returns the number of jobs created.
    func recordRouting(_ events: [RoutedEvent]) async throws -> Int
}

/// A job the store took out of the queue because claiming it failed.
public struct SetAsideJob: Sendable, Hashable {
    public var jobID: Int64
    public var mapping: String
    public var reason: String

    public init(jobID: Int64, mapping: String, reason: String) {
        self.jobID = jobID
        self.mapping = mapping
        self.reason = reason
    }
}

/// What one claim took: the jobs to run (the collection itself), and the
/// jobs set aside on the way.
public struct JobClaim: Sendable, RandomAccessCollection {
    public var jobs: [ClaimedJob]
    public var setAside: [SetAsideJob]

    public init(jobs: [ClaimedJob], setAside: [SetAsideJob] = []) {
        self.jobs = jobs
        self.setAside = setAside
    }

    public var startIndex: Int { jobs.startIndex }
    public var endIndex: Int { jobs.endIndex }
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
    func renewLeases(jobIDs: [Int64], owner: String, until: Timestamp) async throws
    /// Records an attempt's end; `done` also writes the effect ledger, atomically.
    func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws
    /// Takes a running job of this owner out of the queue for an operator.
    func setAside(jobID: Int64, owner: String, reason: String, now: Timestamp) async throws
    /// Puts this owner's unfinished jobs back to `pending` (graceful shutdown).
    func releaseLeases(owner: String, now: Timestamp) async throws
    /// The earliest time a job of the lane becomes due or a lease expires, if any.
    func nextWakeUp(lane: ClaimLane) async throws -> Timestamp?
}

extension JobStore {
    /// Claims jobs without a deadline, oldest due first.
    public func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> JobClaim {
        try await claimDueJobs(owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: .dueTime)
    }

    public func nextWakeUp() async throws -> Timestamp? {
        try await nextWakeUp(lane: .dueTime)
    }
}
