import JSON

/// One compiled mapping file: which events it takes, what it produces, and
/// how a repeat is treated. Compiled whenever the directory is loaded (start-up,
/// SIGHUP, `check`), never per event.
public struct MappingFile: Sendable {
    /// What a later event does once this mapping has delivered its effect key (`on_repeat`).
    public enum OnRepeat: Sendable, Hashable {
        /// A later event for an already delivered effect key does nothing (default).
        case skip
        /// It is delivered again.
        case send
        /// Another mapping (e.g. an update) runs instead.
        case mapping(String)
    }

    /// Which events the mapping takes: one of `events`, and then `condition` must be truthy.
    public struct When: Sendable {
        /// Canonical `type/action` names, e.g. `candidate/new`.
        public var events: [String]
        /// `when.if`, compiled; `nil` takes every listed event. An evaluation error fails
        /// the event (`MappingResult.failed`) rather than skipping it.
        public var condition: Expression?
        /// The condition as written, quoted in `noMatch` reasons.
        public var conditionSource: String?
    }

    /// Unique in the directory; lower-case letters, digits, `-` and `_`, in a file
    /// named `<name>.json`. Every job stores it.
    public var name: String
    public var description: String?
    /// `false` keeps the mapping loaded and checked but matching nothing.
    public var enabled: Bool
    /// Where it was read from, for messages.
    public var file: String
    /// Required in the file; an empty `events` list matches nothing.
    public var when: When
    /// What counts as "the same effect"; `nil` uses the event's `entityKey`.
    public var effectKey: Template?
    /// `.skip` unless set; a named mapping is checked to exist when the directory loads.
    public var onRepeat: OnRepeat
    /// A mapping whose job for the same entity must succeed first; this one's job
    /// waits held and renders with that job's capture as `response`.
    public var after: String?
    /// Named tables for the `lookup` filter, passed into every scope of this mapping.
    public var lookups: [String: JSONObject]
    /// Exactly one target; the compiler refuses none or several.
    public var target: MappingTarget
    /// SHA-256 of the file's bytes: stored with every job it renders.
    public var contentHash: String
    /// Variables without a default that the mapping's templates use.
    public var requiredVariables: [String]
    /// What of an event's `data` its expressions read (everything unless the compiler says less).
    public var dataPaths: DataPaths = .everything
    /// The captured values the request of an `after` mapping reads
    /// (`response.<name>`), checked against what that mapping captures.
    public var responseReads: [ResponseRead] = []
    /// The file's bytes as compiled: stored with a flow's job (by
    /// `contentHash`) so a flow finishes with the version it started with.
    public var source: [UInt8] = []

    /// One `response.<name>` in an `after` mapping's request, and where it is written.
    public struct ResponseRead: Sendable, Hashable {
        /// The capture name read.
        public var name: String
        /// For the diagnostic when no capture of that name exists.
        public var location: MappingSourceLocation
    }

    /// The target's kind name, which picks the executor that runs its jobs.
    public var kind: String { target.kind }
}

/// A place in a mapping file, as diagnostics name it.
public struct MappingSourceLocation: Sendable, Hashable {
    /// The file as given to the compiler.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, in Unicode scalars.
    public var column: Int
    /// RFC 6901 pointer into the file's JSON.
    public var pointer: String
}

/// Where a mapping's jobs go; each kind has its own executor.
public enum MappingTarget: Sendable {
    case rest(RestTarget)
    case csv(CSVTarget)
    case archive(ArchiveTarget)
    case flow(FlowTarget)

    /// `rest`, `csv`, `archive` or `flow`: stored with each job and matched
    /// against the executors present.
    public var kind: String {
        switch self {
        case .rest: return "rest"
        case .flow: return "flow"
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

    /// Renders every template leaf in place; object keys are literal, never templates,
    /// and one failing leaf fails the whole structure.
    public func render(in scope: EvaluationScope) throws(EvaluationError) -> JSONValue {
        switch self {
        case .literal(let value): return scope.escapesPlaceholders ? StoredText.escape(value) : value
        case .template(let template): return try template.renderUnlessDeferred(in: scope)
        case .array(let items):
            var out: [JSONValue] = []
            for (index, item) in items.enumerated() {
                do {
                    out.append(try item.render(in: scope))
                } catch {
                    throw error.inside("\(index)")
                }
            }
            return .array(out)
        case .object(let members):
            var object = JSONObject()
            for member in members {
                do {
                    object[member.key] = try member.value.render(in: scope)
                } catch {
                    throw error.inside(member.key)
                }
            }
            return .object(object)
        }
    }
}

/// A `rest` target's `retry` block, in seconds; defaults 1 h, 72 h and 25 attempts.
public struct RetrySettings: Sendable, Hashable {
    /// Cap of the exponential backoff between two attempts (`max_delay`).
    public var maxDelaySeconds: Int = 3600
    /// No attempt starts later than this after the first one (`give_up_after`).
    public var giveUpAfterSeconds: Int = 72 * 3600
    /// Attempts in all, 1–1000 in a file (`max_attempts`).
    public var maxAttempts: Int = 25
}

/// A compiled `rest` block. `url`, `headers`, `query`, `body` and the idempotency
/// key are rendered into the stored job (at send time for an `after` mapping);
/// the rest is read from the mapping when sending, and `${VARIABLES}` stay
/// placeholders until then.
public struct RestTarget: Sendable {
    /// GET, POST, PUT, PATCH or DELETE; POST when unset.
    public var method: String
    /// Scheme and host are fixed text or a `${VARIABLE}` (checked at compile time),
    /// so event data can never choose where personal data goes.
    public var url: Template
    /// Name → template in file order; each value renders to text.
    public var headers: [(name: String, value: Template)]
    /// Query parameters, name → template in file order; each value renders to text.
    public var query: [(name: String, value: Template)]
    /// Any JSON whose strings are templates; `nil` stores `null`, and no body is sent.
    public var body: JSONTemplate?
    /// Status codes counted as delivered; 200, 201, 202 and 204 unless set.
    public var success: [Int]
    /// Backoff and give-up limits for this target's jobs.
    public var retry: RetrySettings
    /// `nil` uses `<mapping name>:<effect key>`, plus `:event-<id>` with `on_repeat: send`.
    public var idempotencyKey: Template?
    /// Header that carries the key (`Idempotency-Key` unless set); not added when
    /// the mapping sets that header itself, in any letter case.
    public var idempotencyHeader: String
    /// Whether the receiver deduplicates on the key: then a job interrupted mid-send
    /// is re-run, otherwise it is held for an operator.
    public var honoursIdempotencyKey: Bool
    /// Name → template over `response` (status, headers, parsed body), stored on
    /// the job for `after` mappings.
    public var capture: [(name: String, value: Template)]
    /// Credentials resolved at send time from `${VARIABLES}` (never rendered into the job).
    public var auth: RestAuth?
    /// Total time one attempt may take (connect, send, answer).
    public var timeoutSeconds: Int = 30
    /// Rules over the answer tried before the status decides (a JSON-RPC 200
    /// with an `error` object fails; a "must be unique" 400 is already done);
    /// a retryable status not in `success` is retried before any rule.
    public var outcomes: [ResponseRule] = []
    /// What the downstream takes (rate, concurrency, breaker), or the defaults.
    public var limits = RequestLimits()
}

/// A downstream's limits as a mapping writes them (`limits`): what is sent to
/// one host (or one host per Jobylon company) is paced and, after failures
/// in a row, paused by a circuit breaker.
public struct RequestLimits: Sendable, Hashable {
    /// Which requests share the limits.
    public enum Scope: String, Sendable, Hashable {
        /// Everything sent to the same scheme, host and port.
        case host
        /// The same, per Jobylon company (downstreams that limit per customer account).
        case company
    }

    /// `count` requests per `windowSeconds`, e.g. 10 per 60.
    public struct Rate: Sendable, Hashable {
        /// Requests allowed in one window.
        public var count: Int
        /// The window's length.
        public var windowSeconds: Int
    }

    /// See `Rate`; `nil`: no rate limit.
    public var rate: Rate?
    /// Requests in flight at once.
    public var concurrency: Int?
    /// Which requests share them: `host` unless the mapping says `company`.
    public var per: Scope = .host
    /// Retryable failures in a row that open the breaker (5 unless set).
    public var breakerAfter = 5
    /// Seconds the breaker stays open before one probe (30 unless set).
    public var breakerOpenSeconds = 30
    /// Seconds a 429 without `Retry-After` pauses the downstream (60 unless
    /// set: Fortnox's window is 5 s, so its connector waits 5).
    public var throttlePauseSeconds = 60

    /// No rate or concurrency limit; the default breaker.
    public init() {}

    /// `10/min`, `25/5s`, `100/1h`, `25 per 5s`: a count and a window.
    public static func rate(_ text: String) -> Rate? {
        let separator = text.contains("/") ? "/" : " per "
        let pieces = text.components(separatedBy: separator)
        guard pieces.count == 2, let count = Int(pieces[0].trimmingWhitespace()), count > 0 else { return nil }
        let window = pieces[1].trimmingWhitespace()
        let named = ["s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600]
        guard let seconds = named[window] ?? Durations.seconds(window), seconds > 0 else { return nil }
        return Rate(count: count, windowSeconds: seconds)
    }
}

/// Credentials as `${VARIABLE}` text only (the compiler refuses expressions),
/// resolved at send time and never stored.
public enum RestAuth: Sendable, Hashable {
    case bearer(token: String)
    case basic(user: String, password: String)
    /// A bearer token the bridge obtains itself from the downstream's token
    /// endpoint (OAuth2 client credentials, RFC 6749 §4.4).
    case oauth2ClientCredentials(OAuth2ClientCredentials)
    /// A bearer token from a refresh token the store keeps (OAuth2
    /// authorization code with refresh, RFC 6749 §4.1 and §6), rotated on
    /// every refresh by endpoints such as Fortnox's.
    case oauth2RefreshToken(OAuth2RefreshTokenGrant)
}

/// An OAuth2 refresh-token grant: the first refresh token comes from
/// `jobylon-bridge oauth authorize` (the authorization code flow), is stored
/// under `credential` (per company or shared) and replaced by each refresh.
/// Endpoint and client are fixed text or `${VARIABLES}`, never event data.
public struct OAuth2RefreshTokenGrant: Sendable, Hashable {
    /// The stored credential's name (lower-case letters, digits, `-`, `_`).
    public var credential: String
    /// The token endpoint: `https://…`, `http://…` or a `${VARIABLE}` holding it.
    public var tokenURL: String
    /// Where the operator's browser is sent to consent (`oauth authorize --listen`).
    public var authorizationURL: String?
    /// The redirect URI registered for the client; `--listen` uses its own loopback one unless this is set.
    public var redirectURI: String?
    /// The client's id at the endpoint.
    public var clientID: String
    /// Its secret: a `${VARIABLE}` in practice.
    public var clientSecret: String
    /// Space-separated scopes asked for at authorization.
    public var scope: String?
    /// `basic` unless the mapping says `body`.
    public var clientAuthentication: OAuth2ClientCredentials.ClientAuthentication
    /// How long a refresh token lives when the endpoint does not say
    /// (`refresh_expires_in`); Fortnox: 45 days. Without either, no expiry is known.
    public var refreshTokenLifetimeSeconds: Int64?

    /// As compiled.
    public init(
        credential: String, tokenURL: String, authorizationURL: String? = nil, redirectURI: String? = nil, clientID: String,
        clientSecret: String, scope: String? = nil, clientAuthentication: OAuth2ClientCredentials.ClientAuthentication = .basic,
        refreshTokenLifetimeSeconds: Int64? = nil
    ) {
        self.credential = credential
        self.tokenURL = tokenURL
        self.authorizationURL = authorizationURL
        self.redirectURI = redirectURI
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
        self.clientAuthentication = clientAuthentication
        self.refreshTokenLifetimeSeconds = refreshTokenLifetimeSeconds
    }
}

/// An OAuth2 client-credentials grant, as the mapping writes it: every field
/// fixed text or `${VARIABLES}` (never event data), resolved at send time.
public struct OAuth2ClientCredentials: Sendable, Hashable {
    /// How the client authenticates at the token endpoint.
    public enum ClientAuthentication: String, Sendable, Hashable {
        /// HTTP basic with the client id and secret (`client_secret_basic`, the RFC's default).
        case basic
        /// `client_id` and `client_secret` in the form body (`client_secret_post`).
        case body
    }

    /// The token endpoint: `https://…`, `http://…` or a `${VARIABLE}` holding it.
    public var tokenURL: String
    /// The client's id at the endpoint.
    public var clientID: String
    /// Its secret: a `${VARIABLE}` in practice (a file in the secrets directory).
    public var clientSecret: String
    /// Space-separated scopes, if the endpoint wants them.
    public var scope: String?
    /// Some providers (Auth0, Azure) want the API named.
    public var audience: String?
    /// `basic` unless the mapping says `body`.
    public var clientAuthentication: ClientAuthentication

    /// As compiled.
    public init(
        tokenURL: String, clientID: String, clientSecret: String, scope: String? = nil, audience: String? = nil,
        clientAuthentication: ClientAuthentication = .basic
    ) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
        self.audience = audience
        self.clientAuthentication = clientAuthentication
    }
}

/// A compiled `csv` block: each job stages one row, and an export writes one
/// file per period of `schedule`.
public struct CSVTarget: Sendable {
    /// One column: its header and the template of its cell.
    public struct Column: Sendable {
        /// The header text, and the cell's key in the staged row.
        public var name: String
        /// Rendered when the event is planned, not at export time.
        public var value: Template
        /// Neutralise a cell a spreadsheet could run as a formula; on unless
        /// `formula_guard: false`.
        public var formulaGuard: Bool
        /// `text` (default, always quoted), `number` or `date` (written bare).
        public var type: CSVColumnType = .text
        /// The field's layout in a `fixed_width` file; `nil` in a CSV file.
        public var fixed: FixedWidthField?
    }

    /// In mapping-file order, which is the column order of the CSV; at least one.
    public var columns: [Column]
    /// What makes two rows the same (a re-send replaces its staged row); `nil` uses
    /// the effect key.
    public var rowKey: Template?
    /// File name pattern; rendered at export time with `period` in scope.
    public var file: Template
    /// 5-field cron read in `timeZone` (`0 2 * * *` unless set); the compiler checks
    /// only the field count.
    public var schedule: String
    /// IANA zone of the schedule and of `period`'s dates; `UTC` unless set.
    public var timeZone: String
    /// `,` (default), `;` or a tab.
    public var delimiter: String
    /// Start the file with a UTF-8 byte order mark.
    public var bom: Bool
    /// `crlf` (default) or `lf`.
    public var lineEnding: String
    /// `skip` (default), `include_if_changed` or `always`: what a row already
    /// exported in an earlier file does (`CSVResendPolicy`).
    public var onResend: String
    /// `header` (default) writes a header-only file for a period without rows; `none`
    /// writes no file.
    public var emptyPeriod: String
    /// Also write `<file>.done` once the file is in place (for importers that poll).
    public var doneMarker: Bool
    /// The file's character encoding (UTF-8 unless `encoding` says otherwise).
    public var encoding: TextEncoding = .utf8
    /// What a character the encoding lacks becomes (`unencodable`, with `replacement`).
    public var unencodable: UnencodablePolicy = .transliterate
    /// Login and host key when `file` is an `sftp://` URL; `nil` for a local folder.
    public var sftp: SFTPSettings?
    /// `csv` (RFC 4180) or `fixed_width` records (every column has a `FixedWidthField`).
    public var format: PayrollFileFormat = .csv
    /// A header record first: always in CSV, only when asked for in fixed-width files.
    public var header = true
}

/// The file formats one set of rows can be written in.
public enum PayrollFileFormat: String, Sendable, Hashable {
    /// RFC 4180 CSV.
    case csv
    /// One record per row, each field padded or cut to its width, no delimiters or quotes.
    case fixedWidth = "fixed_width"
}

/// One field of a fixed-width record. The width counts characters as
/// written: bytes in ISO-8859-1 and Windows-1252, Unicode scalars in UTF-8,
/// after transliteration.
public struct FixedWidthField: Sendable, Hashable {
    /// Characters the field always takes (1–10,000).
    public var width: Int
    /// Right-aligned (padding on the left); default for `number` columns.
    public var alignRight: Bool
    /// The padding character (printable ASCII; `" "` unless set). With `"0"`
    /// on the left a leading `-` stays first (`-0012`).
    public var pad: UInt8
    /// A longer value is cut to the width (`cut`, reported) or holds the
    /// period's file back whole with an ALERT (`fail`, the default).
    public var cut: Bool

    /// Left-aligned, space-padded, failing on overflow unless told otherwise.
    public init(width: Int, alignRight: Bool = false, pad: UInt8 = 0x20, cut: Bool = false) {
        self.width = width
        self.alignRight = alignRight
        self.pad = pad
        self.cut = cut
    }
}

/// How to log in to the SFTP server a CSV file is dropped on. Text with
/// `${VARIABLES}` only (no event data), resolved at upload time and never stored.
public struct SFTPSettings: Sendable, Hashable {
    /// The account on the server.
    public var user: String
    /// Path of the private key file, e.g. `${SECRETS_DIR}/sftp_ed25519`.
    public var privateKeyFile: String
    /// The key's passphrase, if it has one.
    public var passphrase: String?
    /// The server's host key, pinned: its SHA-256 (as `ssh-keygen -lf` prints
    /// it) or a known_hosts file. Exactly one is set.
    public var hostKeySHA256: String?
    /// A known_hosts file path (the other way to pin the host key).
    public var knownHosts: String?
    /// Mode of the uploaded file on the server (0640 unless set).
    public var fileMode: Int = 0o640
}

/// A compiled `archive` block: one download job per URL that `files` gives.
public struct ArchiveTarget: Sendable {
    /// File kind → template giving a URL, a list of URLs or null; empty strings are skipped.
    public var files: [(kind: String, value: Template)]
    /// Where the files go, rendered per event; `{{ company.id }}/{{ candidate.id }}`
    /// unless set.
    public var directory: Template
    /// Host patterns this mapping may download from, on top of the built-in
    /// Jobylon and S3 ones and the operator's.
    public var allowedHosts: [String]
    /// Largest file accepted, in bytes; 50 MiB unless set.
    public var maxBytes: Int
    /// Shortens, never lengthens, the operator's retention for these files.
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
        case kind, sha256
        case sha256Prefix(Int)
        case ext
    }

    let parts: [Part]
    /// The pattern text as written (already validated).
    public let pattern: String

    /// `{kind}-{sha256_16}.{ext}`: used when a mapping sets no `file_name`.
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
                case "sha256":
                    parts.append(.sha256)
                    hasHash = true
                case "sha256_16":
                    parts.append(.sha256Prefix(16))
                    hasHash = true
                case "sha256_8":
                    parts.append(.sha256Prefix(8))
                    hasHash = true
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
        self =
            ArchiveFileName.parse(pattern).0
            ?? ArchiveFileName(parts: [.kind, .literal("-"), .sha256Prefix(16), .literal("."), .ext], pattern: pattern)
    }

    /// The stored name of one file; `sha256` is the content's hex digest, of which
    /// `{sha256_16}` and `{sha256_8}` take the first characters. Nothing is checked here.
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
