import Crypto
import Foundation
import JSON

/// Why a filter refused its input. Messages say what was expected, never the
/// input value (IBANs and phone numbers are personal data).
public struct FilterError: Error, Sendable, Hashable {
    /// Without the filter's name: the evaluator prefixes it.
    public var message: String

    init(_ message: String) {
        self.message = message
    }
}

struct FilterContext {
    var scope: EvaluationScope
    /// The expression the filter was applied to, to name it in `required`'s error.
    var input: Expression
}

/// One filter of the mapping language. Arity is checked when a mapping is
/// compiled, so evaluation only meets errors about the event's data.
struct Filter: Sendable {
    var name: String
    var arity: ClosedRange<Int>
    var summary: String
    var apply: @Sendable (JSONValue?, [JSONValue?], FilterContext) throws(FilterError) -> JSONValue?
}

enum Filters {
    static let all: [String: Filter] = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })

    static func string(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: return s
        case .number(let n)?: return n.lexeme
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }

    static func argumentString(_ arguments: [JSONValue?], _ index: Int, _ what: String) throws(FilterError) -> String {
        guard index < arguments.count, let s = string(arguments[index]) else { throw FilterError("expects \(what) as argument \(index + 1)") }
        return s
    }

    static func argumentInt(_ arguments: [JSONValue?], _ index: Int) throws(FilterError) -> Int? {
        guard index < arguments.count, let value = arguments[index] else { return nil }
        guard let n = value.numberValue?.int64Value, let i = Int(exactly: n) else { throw FilterError("expects an integer as argument \(index + 1)") }
        return i
    }

    /// Applies `transform` to a string input; missing/null pass through; arrays map element-wise.
    static func mapString(_ value: JSONValue?, _ transform: (String) throws(FilterError) -> JSONValue?) throws(FilterError) -> JSONValue? {
        switch value {
        case nil, .null?: return value
        case .array(let items)?:
            var out: [JSONValue] = []
            for item in items { out.append(try mapString(item, transform) ?? .null) }
            return .array(out)
        default:
            guard let s = string(value) else { throw FilterError("expects text, got \(value?.typeName ?? "nothing")") }
            return try transform(s)
        }
    }

    static func isEmpty(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?: return true
        case .string(let s)?: return s.trimmingWhitespace().isEmpty
        case .array(let a)?: return a.isEmpty
        default: return false
        }
    }

    static let list: [Filter] = [
        Filter(name: "default", arity: 1...1, summary: "the argument when the value is missing, null or empty") { value, args, _ in
            isEmpty(value) ? args[0] : value
        },
        Filter(name: "required", arity: 0...0, summary: "fails the job when the value is missing, null or empty") {
            value, _, context throws(FilterError) in
            if isEmpty(value) {
                throw FilterError("'\(describe(context.input))' is missing or empty")
            }
            return value
        },
        Filter(name: "trim", arity: 0...0, summary: "removes surrounding white space") { value, _, _ throws(FilterError) in
            try mapString(value) { .string($0.trimmingWhitespace()) }
        },
        Filter(name: "lower", arity: 0...0, summary: "lower case") { value, _, _ throws(FilterError) in
            try mapString(value) { .string($0.lowercased()) }
        },
        Filter(name: "upper", arity: 0...0, summary: "upper case") { value, _, _ throws(FilterError) in
            try mapString(value) { .string($0.uppercased()) }
        },
        Filter(name: "title", arity: 0...0, summary: "capitalises each word") { value, _, _ throws(FilterError) in
            try mapString(value) { text in
                var out = ""
                var startOfWord = true
                for ch in text {
                    out += startOfWord ? ch.uppercased() : ch.lowercased()
                    startOfWord = ch == " " || ch == "-" || ch == "'"
                }
                return .string(out)
            }
        },
        Filter(name: "replace", arity: 2...2, summary: "replaces every occurrence of the first argument by the second") {
            value, args, _ throws(FilterError) in
            let from = try argumentString(args, 0, "the text to replace")
            let to = try argumentString(args, 1, "the replacement")
            guard !from.isEmpty else { throw FilterError("cannot replace empty text") }
            return try mapString(value) { .string($0.replacingAll(from, with: to)) }
        },
        Filter(name: "regex_replace", arity: 2...2, summary: "replaces regular-expression matches; $1…$9 in the replacement") {
            value, args, _ throws(FilterError) in
            let pattern = try argumentString(args, 0, "a pattern")
            let replacement = try argumentString(args, 1, "a replacement")
            let regex = try RegexCache.compile(pattern)
            return try mapString(value) { .string(RegexCache.replace(regex, in: $0, with: replacement)) }
        },
        Filter(name: "matches", arity: 1...1, summary: "true when the regular expression matches somewhere") { value, args, _ throws(FilterError) in
            let regex = try RegexCache.compile(try argumentString(args, 0, "a pattern"))
            guard let text = string(value) else { return .bool(false) }
            return .bool(text.contains(regex))
        },
        Filter(name: "split", arity: 1...1, summary: "splits text into an array") { value, args, _ throws(FilterError) in
            let separator = try argumentString(args, 0, "a separator")
            guard !separator.isEmpty else { throw FilterError("cannot split on empty text") }
            guard let text = string(value) else { return value }
            return .array(text.components(separatedBy: separator).map { .string($0) })
        },
        Filter(name: "join", arity: 0...1, summary: "joins an array's elements (default separator ', ')") { value, args, _ throws(FilterError) in
            let separator = args.isEmpty ? ", " : try argumentString(args, 0, "a separator")
            guard case .array(let items)? = value else { return value }
            return .string(items.filter { !$0.isNull }.map { Evaluator.text($0) }.joined(separator: separator))
        },
        Filter(name: "first", arity: 0...0, summary: "first element (or character)") { value, _, _ in
            switch value {
            case .array(let items)?: return items.first
            case .string(let s)?: return s.first.map { .string(String($0)) }
            default: return value
            }
        },
        Filter(name: "last", arity: 0...0, summary: "last element (or character)") { value, _, _ in
            switch value {
            case .array(let items)?: return items.last
            case .string(let s)?: return s.last.map { .string(String($0)) }
            default: return value
            }
        },
        Filter(name: "slice", arity: 1...2, summary: "elements or characters from start (negative: from the end), optional length") {
            value, args, _ throws(FilterError) in
            let start = try argumentInt(args, 0) ?? 0
            let length = try argumentInt(args, 1)
            func bounds(_ count: Int) -> Range<Int> {
                let lower = max(0, min(count, start < 0 ? count + start : start))
                let upper = length.map { max(lower, min(count, lower + $0)) } ?? count
                return lower..<upper
            }
            switch value {
            case .array(let items)?: return .array(Array(items[bounds(items.count)]))
            case .string(let s)?:
                let characters = Array(s)
                return .string(String(characters[bounds(characters.count)]))
            default: return value
            }
        },
        Filter(name: "length", arity: 0...0, summary: "number of elements, characters or members") { value, _, _ in
            switch value {
            case .array(let items)?: return .number(JSONNumber(items.count))
            case .string(let s)?: return .number(JSONNumber(s.count))
            case .object(let o)?: return .number(JSONNumber(o.count))
            case nil, .null?: return .number(JSONNumber(0))
            default: return .number(JSONNumber(1))
            }
        },
        Filter(name: "concat", arity: 1...8, summary: "appends text, or arrays to an array") { value, args, _ in
            if case .array(var items)? = value {
                for arg in args {
                    if case .array(let more)? = arg { items.append(contentsOf: more) } else if let arg { items.append(arg) }
                }
                return .array(items)
            }
            return .string(([value] + args).map { Evaluator.text($0) }.joined())
        },
        Filter(name: "date", arity: 1...3, summary: "formats a date: pattern, optional output zone, optional input zone (IANA)") {
            value, args, _ throws(FilterError) in
            let pattern = try argumentString(args, 0, "a pattern")
            let zone = args.count > 1 ? try argumentString(args, 1, "a time zone") : nil
            let inputZone = args.count > 2 ? try argumentString(args, 2, "a time zone") : nil
            return try mapString(value) { text throws(FilterError) in
                .string(try DateText.format(text, pattern: pattern, zone: zone, inputZone: inputZone))
            }
        },
        Filter(name: "number", arity: 0...1, summary: "parses '1 234,50' or '1234.50' to a number; with a separator argument formats it as text") {
            value, args, _ throws(FilterError) in
            guard let value, !value.isNull else { return value }
            let number: JSONNumber
            if case .number(let n) = value {
                number = n
            } else if let text = string(value), let parsed = NumberText.parse(text) {
                number = parsed
            } else {
                throw FilterError("not a number")
            }
            if args.isEmpty { return .number(number) }
            let separator = try argumentString(args, 0, "a decimal separator")
            return .string(number.lexeme.replacingAll(".", with: separator))
        },
        Filter(name: "iban", arity: 0...0, summary: "normalises an IBAN and checks its mod-97 checksum") { value, _, _ throws(FilterError) in
            try mapString(value) { text throws(FilterError) in .string(try IBAN.normalise(text)) }
        },
        Filter(
            name: "personnummer", arity: 0...1,
            summary: "validates a Swedish personal identity or coordination number (date, check digit) and writes it as '12' "
                + "(YYYYMMDDNNNN, default), '12-' (YYYYMMDD-NNNN), '10' or '10-' (YYMMDD-NNNN, + at 100)"
        ) { value, args, context throws(FilterError) in
            let name = args.isEmpty ? "12" : try argumentString(args, 0, "a form: '12', '12-', '10' or '10-'")
            guard let form = Personnummer.Form(rawValue: name) else { throw FilterError("expects a form: '12', '12-', '10' or '10-'") }
            guard let today = Personnummer.day(ofISO8601: context.scope.now) else { throw FilterError("the mapping clock has no date") }
            // An unanswered custom field may arrive as "": no number, not a wrong one.
            return try mapString(value) { text throws(FilterError) in
                text.isEmpty ? .null : .string(try Personnummer.normalise(text, form: form, today: today))
            }
        },
        Filter(
            name: "clearing_number", arity: 0...0,
            summary: "the clearing number (4 digits, 5 for Swedbank 8xxx-x) of a Swedish bank account written with its account number"
        ) { value, _, _ throws(FilterError) in
            try mapString(value) { text throws(FilterError) in text.isEmpty ? .null : .string(try SwedishBankAccount.split(text).clearing) }
        },
        Filter(
            name: "account_number", arity: 0...0,
            summary: "the account number (7 to 10 digits) after the clearing number of a Swedish bank account"
        ) { value, _, _ throws(FilterError) in
            try mapString(value) { text throws(FilterError) in text.isEmpty ? .null : .string(try SwedishBankAccount.split(text).account) }
        },
        Filter(name: "phone", arity: 0...1, summary: "normalises a phone number to +<country><number>; argument: default country code") {
            value, args, _ throws(FilterError) in
            let country = args.isEmpty ? nil : try argumentString(args, 0, "a country code")
            return try mapString(value) { text throws(FilterError) in .string(try Phone.normalise(text, defaultCountry: country)) }
        },
        Filter(name: "lookup", arity: 1...2, summary: "looks the value up in the mapping's named table; optional default") {
            value, args, context throws(FilterError) in
            let name = try argumentString(args, 0, "a lookup table name")
            guard let table = context.scope.lookups[name] else { throw FilterError("no lookup table '\(name)'") }
            guard let key = string(value), let found = table[key] else {
                if args.count > 1 { return args[1] }
                throw FilterError("no entry in lookup table '\(name)' for this value")
            }
            return found
        },
        Filter(name: "sha256", arity: 0...0, summary: "hex SHA-256 of the text (or of compact JSON)") { value, _, _ in
            guard let value, !value.isNull else { return value }
            let bytes = value.stringValue.map { Array($0.utf8) } ?? JSONWriter.bytes(value)
            let hex = Array("0123456789abcdef")
            return .string(String(SHA256.hash(data: bytes).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] }))
        },
        Filter(
            name: "base64", arity: 0...1,
            summary: "Base64 of the text's UTF-8 (or of compact JSON); 'url' for the URL-safe alphabet without padding"
        ) { value, args, _ throws(FilterError) in
            guard let value, !value.isNull else { return value }
            let alphabet = args.isEmpty ? "standard" : try argumentString(args, 0, "'url' or 'standard'")
            guard alphabet == "standard" || alphabet == "url" else { throw FilterError("expects 'url' or 'standard' as argument 1") }
            let bytes = value.stringValue.map { Array($0.utf8) } ?? JSONWriter.bytes(value)
            return .string(Base64.encode(bytes, urlSafe: alphabet == "url"))
        },
        Filter(name: "json", arity: 0...0, summary: "the value as compact JSON text") { value, _, _ in
            .string(JSONWriter.string(value ?? .null))
        },
        Filter(name: "now", arity: 0...0, summary: "the current time (ISO-8601 UTC) from the daemon's clock, ignoring the input") { _, _, context in
            .string(context.scope.now)
        },
        Filter(name: "string", arity: 0...0, summary: "the value as text") { value, _, _ in
            guard let value, !value.isNull else { return value }
            return .string(Evaluator.text(value))
        },
        Filter(name: "where", arity: 2...2, summary: "keeps array elements whose field equals the value") { value, args, _ throws(FilterError) in
            let field = try argumentString(args, 0, "a field name")
            guard case .array(let items)? = value else { return value }
            return .array(items.filter { Evaluator.equal($0[field], args[1]) })
        },
        Filter(name: "map", arity: 1...1, summary: "takes one field of every array element") { value, args, _ throws(FilterError) in
            let field = try argumentString(args, 0, "a field name")
            guard case .array(let items)? = value else { return value }
            return .array(items.map { $0[field] ?? .null })
        },
        Filter(name: "compact", arity: 0...0, summary: "drops nulls and empty strings from an array") { value, _, _ in
            guard case .array(let items)? = value else { return value }
            return .array(items.filter { !isEmpty($0) })
        },
    ]

    static func describe(_ expression: Expression) -> String {
        switch expression {
        case .path(let path): return path.description
        case .filter(let inner, _): return describe(inner)
        default: return "value"
        }
    }
}

extension String {
    /// Without leading and trailing whitespace (Unicode's definition). The one
    /// trim of the pure modules: by hand, because `CharacterSet` lookups cost
    /// more than the mapping hot path can spend.
    public func trimmingWhitespace() -> String {
        // Most values start and end with a visible ASCII character: nothing to
        // trim, known from two bytes (a cluster ending in such a byte is that
        // character, or one led by a Prepend mark; neither is whitespace).
        if let first = utf8.first, let last = utf8.last, first < 0x80, last < 0x80,
            !String.isASCIIWhitespace(first), !String.isASCIIWhitespace(last)
        {
            return self
        }
        return trimmingWhitespaceByCharacter()
    }

    /// The character rule (Unicode White_Space at either end), for what the byte check cannot settle.
    func trimmingWhitespaceByCharacter() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }

    /// The ASCII members of Unicode White_Space: tab, LF, VT, FF, CR, space.
    static func isASCIIWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }

    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.range(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        guard !target.isEmpty, let first = target.first else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index] == first, self[index...].hasPrefix(target) {
                return index..<(self.index(index, offsetBy: target.count))
            }
            index = self.index(after: index)
        }
        return nil
    }
}

extension String {
    func range(of target: String) -> Range<String.Index>? {
        Substring(self).range(of: target)
    }
}

/// Regular expressions of `regex_replace` and `matches` (Swift Regex syntax).
enum RegexCache {
    static func compile(_ pattern: String) throws(FilterError) -> Regex<AnyRegexOutput> {
        do {
            return try Regex(pattern)
        } catch {
            throw FilterError("invalid regular expression")
        }
    }

    static func replace(_ regex: Regex<AnyRegexOutput>, in text: String, with template: String) -> String {
        text.replacing(regex) { match -> String in
            var out = ""
            var chars = Array(template)
            var i = 0
            while i < chars.count {
                if chars[i] == "$", i + 1 < chars.count, let digit = chars[i + 1].wholeNumberValue {
                    if digit < match.output.count, let substring = match.output[digit].substring { out += substring }
                    i += 2
                } else {
                    out.append(chars[i])
                    i += 1
                }
            }
            chars.removeAll()
            return out
        }
    }
}

enum NumberText {
    /// Accepts `1234.5`, `1 234,50`, `1.234,50`, `1,234.50`, `-12`: the last of
    /// `.` or `,` is the decimal separator; spaces and apostrophes group digits.
    /// A lone `,` is a decimal separator (Nordic convention).
    static func parse(_ text: String) -> JSONNumber? {
        var s = text.trimmingWhitespace().filter { $0 != " " && $0 != "\u{00A0}" && $0 != "\u{202F}" && $0 != "'" }
        let lastDot = s.lastIndex(of: ".")
        let lastComma = s.lastIndex(of: ",")
        if let comma = lastComma, lastDot.map({ comma > $0 }) ?? true {
            s = s.filter { $0 != "." }
            s = s.replacingAll(",", with: ".")
        } else {
            s = s.filter { $0 != "," }
        }
        guard s.filter({ $0 == "." }).count <= 1 else { return nil }
        if s.hasPrefix("+") { s.removeFirst() }
        // Normalise to a JSON lexeme: no leading zeros, no bare dot.
        var negative = false
        if s.hasPrefix("-") {
            negative = true
            s.removeFirst()
        }
        var parts = s.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let whole = parts.first, !whole.isEmpty || parts.count == 2 else { return nil }
        var integer = String(whole.drop { $0 == "0" })
        if integer.isEmpty { integer = "0" }
        parts[0] = integer
        if parts.count == 2, parts[1].isEmpty { parts.removeLast() }
        let lexeme = (negative ? "-" : "") + parts.joined(separator: ".")
        return JSONNumber(lexeme: lexeme)
    }
}

enum IBAN {
    /// Strips spaces, upper-cases, and checks length, characters and mod-97.
    /// The error never repeats the IBAN. ASCII text (every valid IBAN) is
    /// done on bytes; other text by characters, with the same rules.
    static func normalise(_ text: String) throws(FilterError) -> String {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return try normaliseCharacters(text) }
        var compact: [UInt8] = []
        compact.reserveCapacity(34)
        for byte in text.utf8 where !(byte == 0x20 || (0x09...0x0D).contains(byte) || byte == UInt8(ascii: "-")) {
            compact.append(byte &- UInt8(ascii: "a") < 26 ? byte - 0x20 : byte)
        }
        guard (15...34).contains(compact.count) else { throw FilterError("invalid IBAN: wrong length") }
        func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
        func isLetter(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "A") < 26 }
        guard compact.allSatisfy({ isDigit($0) || isLetter($0) }), isLetter(compact[0]), isLetter(compact[1]), isDigit(compact[2]),
            isDigit(compact[3])
        else { throw FilterError("invalid IBAN: unexpected characters") }
        var remainder = 0
        for byte in compact[4...] + compact[..<4] {
            remainder = isDigit(byte) ? (remainder * 10 + Int(byte - 0x30)) % 97 : (remainder * 100 + Int(byte) - 55) % 97
        }
        guard remainder == 1 else { throw FilterError("invalid IBAN: checksum does not match") }
        return String(decoding: compact, as: UTF8.self)
    }

    /// The rules on characters (non-ASCII spaces such as U+00A0 are stripped too).
    static func normaliseCharacters(_ text: String) throws(FilterError) -> String {
        let compact = text.uppercased().filter { !$0.isWhitespace && $0 != "-" }
        guard (15...34).contains(compact.count) else { throw FilterError("invalid IBAN: wrong length") }
        guard compact.allSatisfy({ ($0.isASCII && $0.isLetter) || ($0.isASCII && $0.isNumber) }),
            compact.prefix(2).allSatisfy(\.isLetter), compact.dropFirst(2).prefix(2).allSatisfy(\.isNumber)
        else { throw FilterError("invalid IBAN: unexpected characters") }
        let rearranged = compact.dropFirst(4) + compact.prefix(4)
        var remainder = 0
        for ch in rearranged {
            if let digit = ch.wholeNumberValue {
                remainder = (remainder * 10 + digit) % 97
            } else if let ascii = ch.asciiValue {
                remainder = (remainder * 100 + Int(ascii) - 55) % 97
            }
        }
        guard remainder == 1 else { throw FilterError("invalid IBAN: checksum does not match") }
        return compact
    }
}

enum Phone {
    /// `+46 8-123 45 67` → `+4681234567`; `08-123 45 67` with default `46` →
    /// `+4681234567`; `0046…` → `+46…`. Needs 7–15 digits in the end (E.164).
    /// ASCII text is done on bytes (Unicode property lookups and a hashed
    /// separator set were 4% of `map`); the same rules on `Character`s for the rest.
    static func normalise(_ text: String, defaultCountry: String?) throws(FilterError) -> String {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return try normaliseCharacters(text, defaultCountry: defaultCountry) }
        let plus = UInt8(ascii: "+")
        let zero = UInt8(ascii: "0")
        var kept: [UInt8] = []
        kept.reserveCapacity(text.utf8.count)
        for byte in text.utf8 where !isSeparator(byte) { kept.append(byte) }
        var number: [UInt8]
        if kept.count >= 2 && kept[0] == zero && kept[1] == zero {
            number = [plus] + kept.dropFirst(2)
        } else if kept.first != plus {
            guard let country = defaultCountry?.filter(\.isNumber), !country.isEmpty else {
                throw FilterError("phone number has no country code and no default was given")
            }
            number = [plus] + Array(country.utf8) + (kept.first == zero ? kept.dropFirst() : kept[...])
        } else {
            number = kept
        }
        let digits = number.dropFirst()
        guard digits.allSatisfy({ (zero...UInt8(ascii: "9")).contains($0) }), (7...15).contains(digits.count) else {
            throw FilterError("not a phone number")
        }
        return String(decoding: number, as: UTF8.self)
    }

    /// The separators a number may be written with: space, `-`, `(`, `)`, `.`, `/` (and, outside ASCII, a no-break space).
    static func isSeparator(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "."), UInt8(ascii: "/"): return true
        default: return false
        }
    }

    /// The rules on `Character`s, for text that is not all ASCII.
    static func normaliseCharacters(_ text: String, defaultCountry: String?) throws(FilterError) -> String {
        var s = text.filter { !" -().\u{00A0}/".contains($0) }
        if s.hasPrefix("00") {
            s = "+" + s.dropFirst(2)
        } else if !s.hasPrefix("+") {
            guard let country = defaultCountry?.filter(\.isNumber), !country.isEmpty else {
                throw FilterError("phone number has no country code and no default was given")
            }
            s = "+" + country + (s.hasPrefix("0") ? String(s.dropFirst()) : s)
        }
        let digits = s.dropFirst()
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), (7...15).contains(digits.count) else {
            throw FilterError("not a phone number")
        }
        return s
    }
}

/// RFC 4648 Base64: section 4 (standard, padded) through Foundation, or
/// section 5 (URL-safe, without padding, as search APIs that take an encoded
/// query in a URL expect) derived from it.
enum Base64 {
    static func encode(_ bytes: [UInt8], urlSafe: Bool) -> String {
        let standard = Data(bytes).base64EncodedString()
        guard urlSafe else { return standard }
        return String(standard.compactMap { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 == "=" ? nil : $0 })
    }
}
