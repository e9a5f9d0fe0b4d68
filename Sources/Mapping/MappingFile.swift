import JSON

/// One compiled mapping file: which events it takes, what it produces, and
/// how a repeat is treated. Compiled once at start-up (and by `check`).
public struct MappingFile: Sendable {
    public enum OnRepeat: Sendable, Hashable {
        /// A later event for an already delivered effect key does nothing (default).
        case skip
        /// It is delivered again.
        case send
        /// Another mapping (e.g. an update) runs instead.
        case mapping(String)
    }

    public struct When: Sendable {
        /// Canonical `type/action` names, e.g. `candidate/new`.
        public var events: [String]
        public var condition: Expression?
        public var conditionSource: String?
    }

    public var name: String
    public var description: String?
    public var enabled: Bool
    /// Where it was read from, for messages.
    public var file: String
    public var when: When
    public var effectKey: Template?
    public var onRepeat: OnRepeat
    public var after: String?
    public var lookups: [String: JSONObject]
    public var target: MappingTarget
    /// SHA-256 of the file's bytes: stored with every job it renders.
    public var contentHash: String
    /// Variables without a default that the mapping's templates use.
    public var requiredVariables: [String]

    public var kind: String { target.kind }
}

public enum MappingTarget: Sendable {
    case rest(RestTarget)
    case csv(CSVTarget)
    case archive(ArchiveTarget)

    public var kind: String {
        switch self {
        case .rest: return "rest"
        case .csv: return "csv"
        case .archive: return "archive"
        }
    }
}

/// A JSON structure whose strings are templates.
public indirect enum JSONTemplate: Sendable {
    case literal(JSONValue)
    case template(Template)
    case array([JSONTemplate])
    case object([(key: String, value: JSONTemplate)])

    public func render(in scope: EvaluationScope) throws(EvaluationError) -> JSONValue {
        switch self {
        case .literal(let value): return value
        case .template(let template): return try template.render(in: scope)
        case .array(let items):
            var out: [JSONValue] = []
            for item in items { out.append(try item.render(in: scope)) }
            return .array(out)
        case .object(let members):
            var object = JSONObject()
            for member in members { object[member.key] = try member.value.render(in: scope) }
            return .object(object)
        }
    }
}

public struct RetrySettings: Sendable, Hashable {
    public var maxDelaySeconds: Int = 3600
    public var giveUpAfterSeconds: Int = 72 * 3600
    public var maxAttempts: Int = 25
}

public struct RestTarget: Sendable {
    public var method: String
    public var url: Template
    public var headers: [(name: String, value: Template)]
    public var query: [(name: String, value: Template)]
    public var body: JSONTemplate?
    public var success: [Int]
    public var retry: RetrySettings
    public var idempotencyKey: Template?
    public var idempotencyHeader: String
    public var honoursIdempotencyKey: Bool
    public var capture: [(name: String, value: Template)]
    /// Credentials resolved at send time from `${VARIABLES}` (never rendered into the job).
    public var auth: RestAuth?
    /// Total time one attempt may take (connect, send, answer).
    public var timeoutSeconds: Int = 30
}

public enum RestAuth: Sendable, Hashable {
    case bearer(token: String)
    case basic(user: String, password: String)
}

public struct CSVTarget: Sendable {
    public struct Column: Sendable {
        public var name: String
        public var value: Template
        public var formulaGuard: Bool
    }

    public var columns: [Column]
    public var rowKey: Template?
    /// File name pattern; rendered at export time with `period` in scope.
    public var file: Template
    public var schedule: String
    public var timeZone: String
    public var delimiter: String
    public var bom: Bool
    public var lineEnding: String
    public var onResend: String
    public var emptyPeriod: String
    /// Also write `<file>.done` once the file is in place (for importers that poll).
    public var doneMarker: Bool
}

public struct ArchiveTarget: Sendable {
    public var files: [(kind: String, value: Template)]
    public var directory: Template
    public var allowedHosts: [String]
    public var maxBytes: Int
    public var retentionDays: Int?
    /// The stored file's name, from placeholders (`ArchiveFileName`).
    public var fileName: ArchiveFileName = .standard
}

/// The name an archived file is stored under: literal characters and the
/// placeholders `{kind}`, `{sha256}`, `{sha256_16}`, `{sha256_8}` and `{ext}`.
/// A content hash placeholder is required: the name is content-addressed, so a
/// re-run after a crash lands on the same name and different content never
/// overwrites a file.
public struct ArchiveFileName: Sendable, Hashable {
    enum Part: Sendable, Hashable {
        case literal(String)
        case kind, sha256, sha256Prefix(Int), ext
    }

    let parts: [Part]
    public let pattern: String

    public static let standard = ArchiveFileName(validated: "{kind}-{sha256_16}.{ext}")

    /// `nil` and a reason when the pattern cannot name files safely.
    public static func parse(_ pattern: String) -> (ArchiveFileName?, String?) {
        var parts: [Part] = []
        var rest = Substring(pattern)
        var hasHash = false
        while !rest.isEmpty {
            if rest.hasPrefix("{") {
                guard let close = rest.firstIndex(of: "}") else { return (nil, "unclosed \"{\" in the file name pattern") }
                let name = rest[rest.index(after: rest.startIndex)..<close]
                switch name {
                case "kind": parts.append(.kind)
                case "sha256": parts.append(.sha256); hasHash = true
                case "sha256_16": parts.append(.sha256Prefix(16)); hasHash = true
                case "sha256_8": parts.append(.sha256Prefix(8)); hasHash = true
                case "ext": parts.append(.ext)
                default: return (nil, "unknown placeholder {\(name)}; known: {kind}, {sha256}, {sha256_16}, {sha256_8}, {ext}")
                }
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex(of: "{") ?? rest.endIndex
                let literal = rest[..<end]
                guard literal.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                    return (nil, "the file name pattern may only hold letters, digits, \"-\", \"_\", \".\" and placeholders")
                }
                parts.append(.literal(String(literal)))
                rest = rest[end...]
            }
        }
        guard hasHash else { return (nil, "the file name pattern needs {sha256}, {sha256_16} or {sha256_8}: names are content-addressed") }
        guard !pattern.hasPrefix(".") else { return (nil, "the file name pattern must not start with a dot") }
        return (ArchiveFileName(parts: parts, pattern: pattern), nil)
    }

    init(parts: [Part], pattern: String) {
        self.parts = parts
        self.pattern = pattern
    }

    init(validated pattern: String) {
        self = ArchiveFileName.parse(pattern).0 ?? ArchiveFileName(parts: [.kind, .literal("-"), .sha256Prefix(16), .literal("."), .ext], pattern: pattern)
    }

    public func render(kind: String, sha256: String, fileExtension: String) -> String {
        parts.map { part -> String in
            switch part {
            case .literal(let text): return text
            case .kind: return kind
            case .sha256: return sha256
            case .sha256Prefix(let count): return String(sha256.prefix(count))
            case .ext: return fileExtension
            }
        }.joined()
    }
}
