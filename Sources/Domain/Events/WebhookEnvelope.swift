import JSON

/// The kinds of event Jobylon's Partner API documents, plus a catch-all so an
/// unknown pair is stored and reported instead of lost.
public enum EventKind: Sendable, Hashable, CustomStringConvertible {
    case companySignup
    case jobNew
    case jobUpdate
    case candidateNew
    case unknown(type: String, action: String)

    /// `job/create` appears on one documentation page: a synonym of `job/new`.
    public init(type: String, action: String) {
        switch (type, action) {
        case ("company", "signup"): self = .companySignup
        case ("job", "new"), ("job", "create"): self = .jobNew
        case ("job", "update"): self = .jobUpdate
        case ("candidate", "new"): self = .candidateNew
        default: self = .unknown(type: type, action: action)
        }
    }

    /// The canonical `type/action` name mappings match on.
    public var description: String {
        switch self {
        case .companySignup: return "company/signup"
        case .jobNew: return "job/new"
        case .jobUpdate: return "job/update"
        case .candidateNew: return "candidate/new"
        case .unknown(let type, let action): return "\(type)/\(action)"
        }
    }

    /// False for `.unknown`: the receiver stores such an event `unrouted` instead of routing it.
    public var isDocumented: Bool {
        if case .unknown = self { return false }
        return true
    }
}

/// What the receiver needs from a body before storing it, read by the JSON
/// core's field scanner (no tree is built on the hot path).
public struct WebhookEnvelope: Sendable, Hashable {
    /// `event_type` as sent (non-empty); stored in the inbox beside the body.
    public var eventType: String
    /// `action` as sent (non-empty).
    public var action: String
    /// `eventType`/`action` classified; `.unknown` keeps the pair rather than failing.
    public var kind: EventKind
    /// `data.company.id`, or `data.company_id` for company/signup.
    public var companyID: String?
    /// The entity the event is about: candidate id, job id, or the company id.
    public var subjectID: String?
    /// The body relied on the trailing-comma leniency.
    public var lenient: Bool

    /// An envelope as stored with its event (the inbox keeps these fields), so
    /// later stages need not scan the body again.
    public init(eventType: String, action: String, companyID: String?, subjectID: String?, lenient: Bool) {
        self.init(
            eventType: eventType, action: action, kind: EventKind(type: eventType, action: action),
            companyID: companyID, subjectID: subjectID, lenient: lenient)
    }

    init(eventType: String, action: String, kind: EventKind, companyID: String?, subjectID: String?, lenient: Bool) {
        self.eventType = eventType
        self.action = action
        self.kind = kind
        self.companyID = companyID
        self.subjectID = subjectID
        self.lenient = lenient
    }

    /// `data` is asked for its kind only: materialising it would build the
    /// whole candidate tree on the hot path just to see that it is an object.
    static let query = JSONFieldQuery(
        [
            ["event_type"], ["action"],
            ["data", "company", "id"], ["data", "company_id"],
            ["data", "candidate", "id"], ["data", "job", "id"],
        ],
        kindsOf: [["data"]]
    )

    /// Reads and checks the envelope `{event_type, action, data}`. Throws an
    /// `EnvelopeError` (the body is then quarantined, not stored as an event)
    /// when the JSON is malformed, a field is missing, or `data` is not an object.
    public static func read(_ body: [UInt8], options: JSONParseOptions = .payload) throws(EnvelopeError) -> WebhookEnvelope {
        let result: JSONScanResult
        do {
            result = try JSONFieldScanner(query).scan(body, options: options)
        } catch {
            throw .malformedJSON(error)
        }
        return try envelope(from: result)
    }

    static func envelope(from result: JSONScanResult) throws(EnvelopeError) -> WebhookEnvelope {
        let v = result.values
        guard let typeValue = v[0] else { throw .missingField("event_type") }
        guard case .string(let type) = typeValue, !type.isEmpty else { throw .wrongType("event_type", expected: "a non-empty string") }
        guard let actionValue = v[1] else { throw .missingField("action") }
        guard case .string(let action) = actionValue, !action.isEmpty else { throw .wrongType("action", expected: "a non-empty string") }
        guard let data = result.kinds[0] else { throw .missingField("data") }
        guard data == .object else { throw .wrongType("data", expected: "an object") }
        let kind = EventKind(type: type, action: action)
        let company = identifier(v[2]) ?? identifier(v[3])
        let subject: String?
        switch kind {
        case .companySignup: subject = company
        case .jobNew, .jobUpdate: subject = identifier(v[5])
        case .candidateNew: subject = identifier(v[4])
        case .unknown: subject = identifier(v[4]) ?? identifier(v[5])
        }
        return WebhookEnvelope(
            eventType: type, action: action, kind: kind, companyID: company, subjectID: subject, lenient: result.usedTrailingCommas)
    }

    /// Ids are UUID strings in the documentation; integers are accepted as their lexeme.
    static func identifier(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s) where !s.isEmpty: return s
        case .number(let n): return n.lexeme
        default: return nil
        }
    }
}

/// Why a body is not a usable webhook envelope; safe to return to the sender.
public enum EnvelopeError: Error, Sendable, Hashable, CustomStringConvertible {
    case malformedJSON(JSONError)
    case missingField(String)
    case wrongType(String, expected: String)

    public var description: String {
        switch self {
        case .malformedJSON(let error): return "malformed JSON at \(error)"
        case .missingField(let name): return "missing field \"\(name)\""
        case .wrongType(let name, let expected): return "field \"\(name)\" must be \(expected)"
        }
    }
}
