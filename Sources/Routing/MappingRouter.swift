import Clocks
import Domain
import JSON
import Mapping
import Synchronization

/// Routes events through the compiled mapping files.
///
/// Pure, and run by `EventRoutingService` on committed events (never on the
/// single writer, never in the receiver): the body is parsed once, every enabled mapping whose `when` matches renders its
/// jobs, and each becomes a `PlannedJob`. A mapping that cannot render an
/// event still gets its job, `dead` with the reason, so a fixed mapping can
/// replay it; a mapping waiting for a variable gets `held` jobs.
public struct MappingRouter: EventRouter {
    let registry: MappingRegistry
    let companies: CompanyDirectory
    /// Job kinds this process can run; jobs of other kinds are created `held`
    /// instead of being claimed over and over. `nil`: every kind.
    let executorKinds: Set<String>?

    /// `executorKinds`: the kinds this build runs; jobs of others are held, not lost.
    public init(registry: MappingRegistry, companies: CompanyDirectory = CompanyDirectory(), executorKinds: Set<String>? = nil) {
        self.registry = registry
        self.companies = companies
        self.executorKinds = executorKinds
    }

    /// A router over a fixed set (the CLI's `map` and tests).
    public init(mappings: MappingSet) {
        self.init(registry: MappingRegistry(mappings))
    }

    /// The jobs of every enabled mapping whose `when` matches.
    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
        let mappings = registry.current
        guard envelope.kind.isDocumented else { return [] }
        var signup: JSONValue?
        if envelope.kind == .companySignup {
            // The directory keeps the whole signup: parsed in full.
            guard let full = (try? JSONParser.parse(body, options: .payload))?["data"] else { return [] }
            if let snapshot = CompanySnapshot(signupData: full) { companies.update(snapshot) }
            signup = full
        }
        guard !mappings.mappings.isEmpty else { return [] }
        // Otherwise only what the mappings read is built (the receiver validated the body).
        guard let data = signup ?? ((try? mappings.envelopeReader.read(body)) ?? nil)?.data else { return [] }
        let now = MappingClock.iso8601(milliseconds: receivedAt.milliseconds)
        let event = MappingEvent(
            type: envelope.eventType, action: envelope.action, data: data, receivedAt: now, id: eventID,
            entityKey: "\(envelope.companyID ?? "-"):\(envelope.subjectID ?? "-")", companies: companies.json())
        // Mappings that match, with what each renders: a mapping named by another
        // matching mapping's `on_repeat` runs only as that mapping's repeat.
        var plans: [(mapping: MappingFile, plan: MappingResult)] = []
        for mapping in mappings.mappings {
            let plan = mapping.plan(event, now: now)
            if case .noMatch = plan { continue }
            plans.append((mapping, plan))
        }
        let suppressed = EffectLedger.suppressedByRepeat(
            matching: plans.map { entry in
                if case .mapping(let other) = entry.mapping.onRepeat { return (entry.mapping.name, other) }
                return (entry.mapping.name, nil)
            })
        var jobs: [PlannedJob] = []
        for (mapping, plan) in plans where !suppressed.contains(mapping.name) {
            let crashPolicy: CrashPolicy
            switch mapping.target {
            case .rest(let rest): crashPolicy = rest.honoursIdempotencyKey ? .rerun : .hold
            case .csv, .archive: crashPolicy = .rerun  // staging upserts and downloads are idempotent
            // The first step's; the flow executor moves it to each step's before sending that step.
            case .flow(let flow): crashPolicy = flow.steps.first?.isSafeToResend == true ? .rerun : .hold
            }
            let onRepeat = repeatPolicy(mapping, event: event, now: now)
            func job(item: String, key: String, payload: JSONValue, state: JobState, reason: String? = nil, hold: HoldReason? = nil) -> PlannedJob {
                var deadline: Timestamp?
                if case .archive = mapping.target, let url = payload["url"]?.stringValue {
                    // Signed file URLs stop working at their expiry (else 24 h after the webhook).
                    deadline = SignedURL(url).deadline(receivedAt: receivedAt)
                }
                var planned = PlannedJob(
                    mapping: mapping.name, item: item, kind: mapping.kind, effectKey: key, payload: payload,
                    mappingHash: mapping.contentHash, crashPolicy: crashPolicy, initialState: state, reason: reason,
                    holdReason: hold, onRepeat: onRepeat, after: mapping.after, deadline: deadline
                ).endingAtCreation(receivedAt: receivedAt)
                // A flow renders each step when it is sent, with this version of the mapping.
                if case .flow = mapping.target { planned.mappingSource = mapping.source }
                return planned
            }
            switch plan {
            case .noMatch:
                continue
            case .failed(let message):
                jobs.append(job(item: "", key: event.entityKey, payload: .null, state: .dead, reason: "mapping error: \(message)"))
            case .planned(let rendered):
                var hold: HoldReason?
                if let kinds = executorKinds, !kinds.contains(mapping.kind) {
                    hold = .noExecutor(kind: mapping.kind)
                } else if let missing = mappings.held[mapping.name] {
                    // Released by the store once a restart or reload provides the variables.
                    hold = .missingVariables(missing)
                } else if let after = mapping.after {
                    // Released by the store when `after`'s job for this entity is done; the
                    // executor then renders again with that job's capture as `response`.
                    hold = .waitingFor(mapping: after)
                }
                for item in rendered {
                    jobs.append(job(item: item.item, key: item.effectKey, payload: item.payload, state: hold == nil ? .pending : .held, hold: hold))
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
            // A repeat is a delivery of its own: without an `idempotency_key` of
            // the mapping's, its key names the event, so a downstream that
            // honours keys neither answers 409 nor replays an earlier update.
            var payload = first.payload
            if case .rest(let rest) = other.target, rest.idempotencyKey == nil, case .object(var object) = payload {
                object["idempotency_key"] = .string(StoredText.escape("\(other.name):\(first.effectKey):event-\(event.id.map(String.init) ?? "0")"))
                payload = .object(object)
            }
            return .alternative(mapping: other.name, kind: other.kind, payload: payload, mappingHash: other.contentHash)
        }
    }
}
