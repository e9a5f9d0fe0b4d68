import JSON
import Mapping

/// Removes personal data and secrets from text the bridge stores or prints
/// about a job: downstream error bodies, transport errors, reasons.
///
/// Two passes: by value (every personal value the job itself sent, in the
/// forms a downstream may quote it: as sent, without spaces, grouped in
/// fours) and by pattern (IBANs also grouped in fours, e-mail addresses,
/// phone numbers, Swedish personal identity numbers, long digit runs such as
/// bank account numbers, bearer tokens and long opaque strings). Applied
/// before anything is written to the store or the log.
public struct Redactor: Sendable {
    /// What every removed value and pattern match is replaced with.
    public static let mask = "[redacted]"
    /// Values to remove wherever they appear, longest first.
    let values: [String]

    /// Values shorter than 4 characters after trimming are skipped (each would
    /// mask every occurrence of itself in unrelated text).
    public init(values: some Sequence<String> = []) {
        var forms: Set<String> = []
        for value in values {
            let trimmed = value.trimmingWhitespace()
            guard trimmed.count >= 4 else { continue }
            forms.insert(trimmed)
            let compact = trimmed.filter { $0 != " " && $0 != "-" }
            if compact.count >= 4 {
                forms.insert(compact)
                forms.insert(Redactor.groupedInFours(compact))
            }
        }
        self.values = forms.sorted { $0.count > $1.count }
    }

    /// The string and number leaves of a job's rendered payload (its request
    /// body and query, a CSV `row`, or the whole payload when it is not a
    /// request: what the downstream may quote back), for by-value redaction.
    /// A payload that is not strict JSON gives the pattern pass only.
    public init(payload: [UInt8]) {
        guard let value = try? JSONParser.parse(payload, options: .strict) else {
            self.init()
            return
        }
        self.init(payload: value)
    }

    /// The same, from a payload already parsed.
    public init(payload value: JSONValue) {
        var leaves: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .string(let text): leaves.append(text)
            case .number(let number): leaves.append(number.lexeme)
            case .array(let items):
                for item in items { collect(item) }
            case .object(let members):
                for member in members { collect(member.value) }
            default: break
            }
        }
        if let body = value["body"] { collect(body) } else if value["method"] == nil { collect(value) }
        if let query = value["query"] { collect(query) }
        if let row = value["row"] { collect(row) }
        self.init(values: leaves)
    }

    /// Both passes: this job's values first, then the patterns.
    public func redact(_ text: String) -> String {
        var out = text
        for value in values where out.contains(value) {
            out = out.replacing(value, with: Redactor.mask)
        }
        return Redactor.redactPatterns(out)
    }

    static func groupedInFours(_ text: String) -> String {
        var out = ""
        for (index, character) in text.enumerated() {
            if index > 0 && index % 4 == 0 { out.append(" ") }
            out.append(character)
        }
        return out
    }

    /// The pattern pass alone (for text with no job at hand, e.g. old rows shown by `jobs`).
    public static func redactPatterns(_ text: String) -> String {
        var out = text
        // Credentials first (they may contain digits the later patterns would split).
        // Word boundaries are the simple kind: with Unicode's rules `IBAN:SE45…`
        // has no boundary before the IBAN.
        out = out.replacing(#/(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+\/=-]{8,}/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(
            #/(?i)\b(?:access_token|refresh_token|id_token|x-api-key|api-key|api_key|apikey|token|password|passwd|client_secret|secret)["']?\s*[:=]\s*["']?[^\s"',;&}]+/#
                .wordBoundaryKind(.simple), with: mask)
        // IBAN: two letters, two check digits, 11-30 alphanumerics, also grouped in fours.
        out = out.replacing(#/(?i)\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(#/[\p{L}\p{N}._%+-]+@[\p{L}\p{N}.-]+\.\p{L}{2,}/#, with: mask)
        // Swedish personal identity / coordination numbers: (YY)YYMMDD-NNNN or +NNNN.
        out = out.replacing(#/\b(?:[0-9]{2})?[0-9]{6}[-+][0-9]{4}\b/#.wordBoundaryKind(.simple), with: mask)
        // Long opaque strings (JWTs, API keys, signatures): 32+ token characters with a digit.
        out = out.replacing(#/\b(?=[A-Za-z0-9_.-]*[0-9])[A-Za-z0-9_.-]{32,}/#.wordBoundaryKind(.simple), with: mask)
        // Phone numbers and account numbers: digit runs (spaces, dashes, brackets
        // between) of 8 digits or more (08-123 456 is the shortest Swedish
        // number; sizes and counts below that stay readable), except ISO dates.
        out = out.replacing(#/\+?[0-9][0-9 ()\-]{4,}[0-9]/#) { match -> String in
            let text = String(match.output)
            let digits = text.filter(\.isNumber).count
            if digits < 8 || Redactor.isDateOrTime(text) { return text }
            return mask
        }
        return out
    }

    /// `2026-12-01`, `2026-12-01 10` and the like are not phone numbers.
    static func isDateOrTime(_ text: String) -> Bool {
        text.wholeMatch(of: #/[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{1,2})?/#) != nil
    }
}
