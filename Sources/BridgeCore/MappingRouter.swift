import JSON
import Mapping
import Synchronization

/// Routes events through the compiled mapping files.
///
/// Pure and run in the receiver's task (never on the single writer): the
/// body is parsed once, every enabled mapping whose `when` matches renders its
/// jobs, and each becomes a `PlannedJob`. A mapping that cannot render an
/// event still gets its job, `dead` with the reason, so a fixed mapping can
/// replay it; a mapping waiting for a variable gets `held` jobs.
public struct MappingRouter: EventRouter {
    let registry: MappingRegistry
    let companies: CompanyDirectory
    /// Job kinds this process can run; jobs of other kinds are created `held`
    /// instead of being claimed over and over. `nil`: every kind.
    let executorKinds: Set<String>?

    public init(registry: MappingRegistry, companies: CompanyDirectory = CompanyDirectory(), executorKinds: Set<String>? = nil) {
        self.registry = registry
        self.companies = companies
        self.executorKinds = executorKinds
    }

    public init(mappings: MappingSet) {
        self.init(registry: MappingRegistry(mappings))
    }

    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
        let mappings = registry.current
        guard envelope.kind.isDocumented, let data = (try? JSONParser.parse(body, options: .payload))?["data"] else { return [] }
        if envelope.kind == .companySignup, let snapshot = CompanySnapshot(signupData: data) {
            companies.update(snapshot)
        }
        guard !mappings.mappings.isEmpty else { return [] }
        let now = MappingClock.iso8601(milliseconds: receivedAt.milliseconds)
        let event = MappingEvent(
            type: envelope.eventType, action: envelope.action, data: data, receivedAt: now, id: eventID,
            entityKey: "\(envelope.companyID ?? "-"):\(envelope.subjectID ?? "-")", companies: companies.json())
        var jobs: [PlannedJob] = []
        for mapping in mappings.mappings {
            let crashPolicy: CrashPolicy
            switch mapping.target {
            case .rest(let rest): crashPolicy = rest.honoursIdempotencyKey ? .rerun : .hold
            case .csv, .archive: crashPolicy = .rerun  // staging upserts and downloads are idempotent
            }
            let onRepeat = repeatPolicy(mapping, event: event, now: now)
            func job(item: String, key: String, payload: JSONValue, state: JobState, reason: String?) -> PlannedJob {
                var deadline: Timestamp?
                if case .archive = mapping.target, let url = payload["url"]?.stringValue {
                    // Signed file URLs stop working at their expiry (else 24 h after the webhook).
                    deadline = SignedURL(url).deadline(receivedAt: receivedAt)
                }
                return PlannedJob(mapping: mapping.name, item: item, kind: mapping.kind, effectKey: key, payload: payload,
                                  mappingHash: mapping.contentHash, crashPolicy: crashPolicy, initialState: state, reason: reason,
                                  onRepeat: onRepeat, after: mapping.after, deadline: deadline)
            }
            switch mapping.plan(event, now: now) {
            case .noMatch:
                continue
            case .failed(let message):
                jobs.append(job(item: "", key: event.entityKey, payload: .null, state: .dead, reason: "mapping error: \(message)"))
            case .planned(let rendered):
                var state = JobState.pending
                var reason: String?
                if let kinds = executorKinds, !kinds.contains(mapping.kind) {
                    state = .held
                    reason = "no executor for kind '\(mapping.kind)' in this version; `jobs retry` runs it once there is one"
                } else if let missing = mappings.held[mapping.name] {
                    // Released by `releaseHeldJobs` once a restart or reload provides the variable.
                    state = .held
                    reason = missing
                } else if let after = mapping.after {
                    // Released by the store when `after`'s job for this entity is done; the
                    // executor then renders again with that job's capture as `response`.
                    state = .held
                    reason = "after: waits for \(after) to succeed for this entity"
                }
                for item in rendered {
                    jobs.append(job(item: item.item, key: item.effectKey, payload: item.payload, state: state, reason: reason))
                }
            }
        }
        return jobs
    }

    /// `on_repeat` naming another mapping renders that mapping too, so a repeat
    /// can run it without evaluating anything later.
    func repeatPolicy(_ mapping: MappingFile, event: MappingEvent, now: String) -> RepeatPolicy {
        switch mapping.onRepeat {
        case .skip: return .skip
        case .send: return .send
        case .mapping(let name):
            guard let other = registry.current.mapping(named: name),
                  case .planned(let rendered) = other.plan(event, now: now), let first = rendered.first
            else { return .skip }
            return .alternative(mapping: other.name, kind: other.kind, payload: first.payload, mappingHash: other.contentHash)
        }
    }
}

/// The mappings in force; replaced whole on reload (SIGHUP), never edited.
public final class MappingRegistry: Sendable {
    private let state: Mutex<MappingSet>

    public init(_ mappings: MappingSet) {
        state = Mutex(mappings)
    }

    public var current: MappingSet { state.withLock { $0 } }

    public func replace(with mappings: MappingSet) {
        state.withLock { $0 = mappings }
    }
}
