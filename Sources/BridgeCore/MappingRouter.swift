import JSON
import Mapping

/// Routes events through the compiled mapping files.
///
/// Pure and run in the receiver's task (never on the single writer): the
/// body is parsed once, every enabled mapping whose `when` matches renders its
/// jobs, and each becomes a `PlannedJob`. A mapping that cannot render an
/// event still gets its job, `dead` with the reason, so a fixed mapping can
/// replay it; a mapping waiting for a variable gets `held` jobs.
public struct MappingRouter: EventRouter {
    public let mappings: MappingSet

    public init(mappings: MappingSet) {
        self.mappings = mappings
    }

    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp) -> [PlannedJob] {
        guard envelope.kind.isDocumented, !mappings.mappings.isEmpty,
              let data = (try? JSONParser.parse(body, options: .payload))?["data"] else { return [] }
        let now = MappingClock.iso8601(milliseconds: receivedAt.milliseconds)
        let event = MappingEvent(
            type: envelope.eventType, action: envelope.action, data: data, receivedAt: now,
            entityKey: "\(envelope.companyID ?? "-"):\(envelope.subjectID ?? "-")")
        var jobs: [PlannedJob] = []
        for mapping in mappings.mappings {
            let crashPolicy: CrashPolicy
            switch mapping.target {
            case .rest(let rest): crashPolicy = rest.honoursIdempotencyKey ? .rerun : .hold
            case .csv, .archive: crashPolicy = .rerun  // staging upserts and downloads are idempotent
            }
            func job(item: String, key: String, payload: JSONValue, state: JobState, reason: String?) -> PlannedJob {
                PlannedJob(mapping: mapping.name, item: item, kind: mapping.kind, effectKey: key, payload: payload,
                           mappingHash: mapping.contentHash, crashPolicy: crashPolicy, initialState: state, reason: reason)
            }
            switch mapping.plan(event, now: now) {
            case .noMatch:
                continue
            case .failed(let message):
                jobs.append(job(item: "", key: event.entityKey, payload: .null, state: .dead, reason: "mapping error: \(message)"))
            case .planned(let rendered):
                var state = JobState.pending
                var reason: String?
                if let missing = mappings.held[mapping.name] {
                    state = .held
                    reason = missing
                } else if let after = mapping.after {
                    // Rendering with the other job's response is the REST executor's part.
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
}
