import JSON

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
    /// The inbox id reserved before routing (`EventStore.reserveEventID()`), if any.
    public var eventID: Int64?

    public init(body: [UInt8], receivedAt: Timestamp, content: Content, eventID: Int64? = nil) {
        self.eventID = eventID
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
    /// A fresh inbox id for an event about to be routed and stored, so that
    /// rendered jobs can carry `event.id`. Ids of events that are not stored
    /// (duplicates, failures) are simply never used.
    func reserveEventID() -> Int64
    /// True when a webhook arriving now could be committed.
    func isAcceptingWrites() async -> Bool
}

/// The job queue and effect ledger as the runner sees them.
public protocol JobStore: Sendable {
    /// Claims up to `limit` due jobs under a lease. Jobs whose effect key was
    /// already delivered are marked `skipped` instead of being returned; jobs
    /// of runners whose lease ran out are re-queued or parked `in_doubt`.
    func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp, lane: ClaimLane) async throws -> [ClaimedJob]
    func renewLeases(jobIDs: [Int64], owner: String, until: Timestamp) async throws
    /// Records an attempt's end; `done` also writes the effect ledger, atomically.
    func complete(jobID: Int64, owner: String, completion: JobCompletion, now: Timestamp) async throws
    /// Puts this owner's unfinished jobs back to `pending` (graceful shutdown).
    func releaseLeases(owner: String, now: Timestamp) async throws
    /// The earliest time a job of the lane becomes due or a lease expires, if any.
    func nextWakeUp(lane: ClaimLane) async throws -> Timestamp?
}

extension JobStore {
    /// Claims jobs without a deadline, oldest due first.
    public func claimDueJobs(owner: String, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> [ClaimedJob] {
        try await claimDueJobs(owner: owner, now: now, limit: limit, leaseUntil: leaseUntil, lane: .dueTime)
    }

    public func nextWakeUp() async throws -> Timestamp? {
        try await nextWakeUp(lane: .dueTime)
    }
}
