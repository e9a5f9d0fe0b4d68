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
            case .string(let text):
                leaves.append(text)
                // A stored request doubles `$` (StoredText): the downstream quotes it single.
                if text.utf8.contains(UInt8(ascii: "$")) { leaves.append(StoredText.unescape(text)) }
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
    ///
    /// Swift's `Regex` costs ~0.4 ms per pattern and call even when compiled
    /// once, and every reason and error excerpt passes here: each pattern is
    /// therefore tried only when a byte scan says it could match (`PatternHints`,
    /// a necessary condition, exact for ASCII text; other text takes every
    /// pattern), and the digit-run pattern, which almost every reason
    /// (timestamps, sizes) could match, is written out by hand (`maskDigitRuns`).
    public static func redactPatterns(_ text: String) -> String {
        var out = text
        // Credentials first (they may contain digits the later patterns would split).
        // Word boundaries are the simple kind: with Unicode's rules `IBAN:SE45…`
        // has no boundary before the IBAN.
        if PatternHints(out).mayHaveAuthorizationScheme {
            out = out.replacing(#/(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+\/=-]{8,}/#.wordBoundaryKind(.simple), with: mask)
        }
        if PatternHints(out).mayHaveSecretAssignment {
            out = out.replacing(
                #/(?i)\b(?:access_token|refresh_token|id_token|x-api-key|api-key|api_key|apikey|token|password|passwd|client_secret|secret)["']?\s*[:=]\s*["']?[^\s"',;&}]+/#
                    .wordBoundaryKind(.simple), with: mask)
        }
        // IBAN: two letters, two check digits, 11-30 alphanumerics, also grouped in fours.
        if PatternHints(out).mayHaveIBAN {
            out = out.replacing(#/(?i)\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b/#.wordBoundaryKind(.simple), with: mask)
        }
        if PatternHints(out).mayHaveEmail {
            out = out.replacing(#/[\p{L}\p{N}._%+-]+@[\p{L}\p{N}.-]+\.\p{L}{2,}/#, with: mask)
        }
        // Swedish personal identity / coordination numbers: (YY)YYMMDD-NNNN or +NNNN.
        if PatternHints(out).mayHavePersonalNumber {
            out = out.replacing(#/\b(?:[0-9]{2})?[0-9]{6}[-+][0-9]{4}\b/#.wordBoundaryKind(.simple), with: mask)
        }
        // Long opaque strings (JWTs, API keys, signatures): 32+ token characters with a digit.
        if PatternHints(out).mayHaveOpaqueToken {
            out = out.replacing(#/\b(?=[A-Za-z0-9_.-]*[0-9])[A-Za-z0-9_.-]{32,}/#.wordBoundaryKind(.simple), with: mask)
        }
        return maskDigitRuns(out)
    }

    /// Phone numbers and account numbers: every match of
    /// `\+?[0-9][0-9 ()\-]{4,}[0-9]` (digit runs with spaces, dashes and
    /// brackets between; leftmost, greedy, as `Regex` finds them) with 8 digits
    /// or more (08-123 456 is the shortest Swedish number; sizes and counts
    /// below that stay readable), except ISO dates. By hand, over characters
    /// as `Regex` sees them; `RedactionTests` checks it against the regex.
    static func maskDigitRuns(_ text: String) -> String {
        var digitBytes = 0
        for byte in text.utf8 where byte &- 0x30 < 10 { digitBytes += 1 }
        if digitBytes < 8 { return text }  // every digit character holds a digit byte
        let characters = Array(text)
        var out = ""
        var copied = 0
        var index = 0
        while index < characters.count {
            let plus = characters[index] == "+" && index + 1 < characters.count && isDigit(characters[index + 1])
            guard plus || isDigit(characters[index]) else {
                index += 1
                continue
            }
            let first = plus ? index + 1 : index
            var runEnd = first + 1
            while runEnd < characters.count && (isDigit(characters[runEnd]) || " ()-".contains(characters[runEnd])) { runEnd += 1 }
            // The match ends at the run's last digit with at least four characters between.
            var last = runEnd - 1
            while last >= first + 5 && !isDigit(characters[last]) { last -= 1 }
            guard last >= first + 5 else {
                index = runEnd  // no start inside this run can match either
                continue
            }
            let match = characters[index...last]
            if match.filter(\.isNumber).count >= 8 && !isDateOrTime(match) {
                out.append(contentsOf: characters[copied..<index])
                out.append(mask)
                copied = last + 1
            }
            index = last + 1
        }
        if copied == 0 { return text }
        out.append(contentsOf: characters[copied...])
        return out
    }

    /// `[0-9]` as `Regex` matches a character: one scalar in the range (`1` with
    /// a combining mark is not a digit).
    static func isDigit(_ character: Character) -> Bool {
        let scalars = character.unicodeScalars
        guard let scalar = scalars.first, scalars.index(after: scalars.startIndex) == scalars.endIndex else { return false }
        return scalar.value &- 0x30 < 10
    }

    /// `[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{1,2})?`, the whole text: `2026-12-01`,
    /// `2026-12-01 10` and the like are not phone numbers.
    static func isDateOrTime(_ text: some Collection<Character>) -> Bool {
        let characters = Array(text)
        let shape: [Character] = Array("dddd-dd-dd")
        guard characters.count == 10 || characters.count == 12 || characters.count == 13 else { return false }
        for (character, expected) in zip(characters, shape) {
            if expected == "d" ? !isDigit(character) : character != expected { return false }
        }
        guard characters.count > 10 else { return true }
        return characters[10] == " " && characters[11...].allSatisfy(isDigit)
    }
}

/// Necessary conditions for the redaction patterns, from one scan of the
/// text's bytes: a pattern whose flag is false cannot match. Exact for ASCII
/// text; text with any other byte gets every flag set (case folding and
/// grapheme clusters are `Regex`'s to judge).
struct PatternHints {
    private let bytes: [UInt8]
    private let ascii: Bool

    init(_ text: String) {
        self.bytes = Array(text.utf8)
        self.ascii = bytes.allSatisfy { $0 < 0x80 }
    }

    /// `bearer` or `basic`, any case.
    var mayHaveAuthorizationScheme: Bool { !ascii || containsLowercased("bearer") || containsLowercased("basic") }

    /// A `:` or `=`, and a fragment every credential name contains.
    var mayHaveSecretAssignment: Bool {
        guard ascii else { return true }
        guard bytes.contains(UInt8(ascii: ":")) || bytes.contains(UInt8(ascii: "=")) else { return false }
        return ["token", "passw", "secret", "api"].contains { containsLowercased($0) }
    }

    /// Two letters followed by two digits.
    var mayHaveIBAN: Bool {
        guard ascii else { return true }
        guard bytes.count >= 15 else { return false }
        for index in 0..<(bytes.count - 3)
        where PatternHints.isLetter(bytes[index]) && PatternHints.isLetter(bytes[index + 1]) && PatternHints.isDigit(bytes[index + 2])
            && PatternHints.isDigit(bytes[index + 3])
        {
            return true
        }
        return false
    }

    /// An `@`.
    var mayHaveEmail: Bool { !ascii || bytes.contains(UInt8(ascii: "@")) }

    /// Six digits, `-` or `+`, four digits.
    var mayHavePersonalNumber: Bool {
        guard ascii else { return true }
        guard bytes.count >= 11 else { return false }
        for index in 6..<(bytes.count - 4) where bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            if bytes[(index - 6)..<index].allSatisfy(PatternHints.isDigit) && bytes[(index + 1)...(index + 4)].allSatisfy(PatternHints.isDigit) {
                return true
            }
        }
        return false
    }

    /// A run of 32 token characters (`[A-Za-z0-9_.-]`).
    var mayHaveOpaqueToken: Bool {
        guard ascii else { return true }
        var run = 0
        for byte in bytes {
            if PatternHints.isLetter(byte) || PatternHints.isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "-")
            {
                run += 1
                if run >= 32 { return true }
            } else {
                run = 0
            }
        }
        return false
    }

    private func containsLowercased(_ word: String) -> Bool {
        let needle = Array(word.utf8)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) {
            var matches = true
            for (offset, expected) in needle.enumerated() where PatternHints.lowercased(bytes[start + offset]) != expected {
                matches = false
                break
            }
            if matches { return true }
        }
        return false
    }

    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- UInt8(ascii: "a") < 26 }
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    static func lowercased(_ byte: UInt8) -> UInt8 { byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte }
}
