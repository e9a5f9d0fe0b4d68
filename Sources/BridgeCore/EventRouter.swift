import JSON

/// Decides which jobs an event creates. Pure: the receiver calls it before
/// handing the event to the store, so evaluation never runs on the single
/// database writer, and the event and its jobs commit together (exactly once).
public protocol EventRouter: Sendable {
    func route(_ envelope: WebhookEnvelope, body: [UInt8]) -> [PlannedJob]
}

/// The built-in route until mapping files exist: one `log` job per documented
/// event, keyed by company + subject, so the whole path (ledger, leases,
/// retries) runs end to end with an effect that cannot harm anyone.
public struct AuditLogRouter: EventRouter {
    public static let mappingName = "audit-log"

    public init() {}

    public func route(_ envelope: WebhookEnvelope, body: [UInt8]) -> [PlannedJob] {
        guard envelope.kind.isDocumented else { return [] }
        let entity = "\(envelope.companyID ?? "-"):\(envelope.subjectID ?? "-")"
        let payload: JSONValue = .object(JSONObject([
            .init(key: "event", value: .string(envelope.kind.description)),
            .init(key: "company_id", value: envelope.companyID.map(JSONValue.string) ?? .null),
            .init(key: "subject_id", value: envelope.subjectID.map(JSONValue.string) ?? .null),
        ]))
        return [PlannedJob(
            mapping: Self.mappingName,
            kind: "log",
            effectKey: "\(envelope.kind):\(entity)",
            payload: payload,
            mappingHash: "builtin-audit-log-v1",
            crashPolicy: .rerun
        )]
    }
}
