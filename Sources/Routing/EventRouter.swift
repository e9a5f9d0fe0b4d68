import Clocks
import Domain
import JSON

/// Decides which jobs an event creates. Pure: `EventRoutingService` calls it
/// for events already committed (the receiver only stores them), off the
/// single database writer; the jobs and the event's removal from the routing
/// queue then commit together, so an event is routed exactly once.
public protocol EventRouter: Sendable {
    /// `eventID`: the event's inbox id, so mappings can use `event.id`.
    func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob]
}

extension EventRouter {
    /// For callers without a stored event (tests, the CLI's dry runs).
    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp) -> [PlannedJob] {
        route(envelope, body: body, receivedAt: receivedAt, eventID: nil)
    }
}

/// Several routers in order (e.g. the mapping files plus the audit log).
public struct CompositeRouter: EventRouter {
    /// Asked in order; their jobs are concatenated.
    public let routers: [any EventRouter]

    /// One router made of several (the mappings and the audit log).
    public init(_ routers: [any EventRouter]) {
        self.routers = routers
    }

    /// Every router's jobs for the event.
    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
        routers.flatMap { $0.route(envelope, body: body, receivedAt: receivedAt, eventID: eventID) }
    }
}

/// The optional built-in audit log (`audit_log: true`): one `log` job per
/// documented event, keyed by kind + company + subject, logging ids only. It
/// also proves the whole path (ledger, leases, retries) with an effect that
/// cannot harm anyone.
public struct AuditLogRouter: EventRouter {
    /// The name its jobs carry in `jobs` output and the ledger.
    public static let mappingName = "audit-log"

    public init() {}

    /// One `log` job per documented event, keyed by its entity (a re-send is skipped by the ledger).
    public func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
        guard envelope.kind.isDocumented else { return [] }
        let entity = "\(envelope.companyID ?? "-"):\(envelope.subjectID ?? "-")"
        let payload: JSONValue = .object(
            JSONObject([
                .init(key: "event", value: .string(envelope.kind.description)),
                .init(key: "company_id", value: envelope.companyID.map(JSONValue.string) ?? .null),
                .init(key: "subject_id", value: envelope.subjectID.map(JSONValue.string) ?? .null),
            ]))
        return [
            PlannedJob(
                mapping: Self.mappingName,
                kind: "log",
                effectKey: "\(envelope.kind):\(entity)",
                payload: payload,
                mappingHash: "builtin-audit-log-v1",
                crashPolicy: .rerun
            )
        ]
    }
}
