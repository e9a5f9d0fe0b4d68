/// A JSON value that keeps everything the sender wrote that matters for replay:
/// numbers as their exact lexeme (an id above 2^53 or `5903582` never becomes a
/// lossy `Double`), and object members in their original order.
///
/// Equality is structural and exact: `1.0` and `1` are different numbers, and
/// objects compare member by member in order. Semantic comparisons (numeric
/// equality, unordered objects) belong to the layer that needs them.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// True only for an explicit `null`; a missing member is `nil` from the
    /// subscripts, never `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The string, or `nil` for any other kind: no conversion (`plainText` renders
    /// numbers and booleans as text).
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The boolean, or `nil` for any other kind: no truthiness (`0` and `""` are not `false`).
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The number with its exact lexeme, or `nil` for any other kind (`"42"` is a string).
    public var numberValue: JSONNumber? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The elements in order, or `nil` for any other kind.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members in sender order, or `nil` for any other kind.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The member `key` of an object; `nil` for a missing key or a non-object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` of an array; `nil` when out of range or not an array.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let array) = self, array.indices.contains(index) else { return nil }
        return array[index]
    }

    /// Follows a path of object keys, e.g. `["data", "candidate", "id"]`.
    public subscript(path path: [String]) -> JSONValue? {
        var current = self
        for key in path {
            guard let next = current[key] else { return nil }
            current = next
        }
        return current
    }

    /// The value at an RFC 6901 JSON pointer (`""` is the whole document).
    public func value(at pointer: JSONPointer) -> JSONValue? {
        var current = self
        for token in pointer.tokens {
            switch current {
            case .object(let object):
                guard let next = object[token] else { return nil }
                current = next
            case .array(let array):
                guard let index = JSONPointer.arrayIndex(token), array.indices.contains(index) else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        return current
    }

    /// A short name of the value's type, for error messages that must not
    /// repeat the value itself (it may be personal data).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSONValue {
    /// How a value reads as plain text (a template's mixed text, a CSV cell):
    /// missing and null are empty, strings as they are, numbers as their
    /// lexeme, arrays and objects as compact JSON.
    public static func plainText(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return ""
        case .string(let s)?: return s
        case .number(let n)?: return n.lexeme
        case .bool(let b)?: return b ? "true" : "false"
        case let other?: return JSONWriter.string(other)
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text.
    public var description: String { JSONWriter.string(self) }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// `nil` in a literal is JSON `null`, a present value (unlike a missing key).
    public init(nilLiteral: ()) { self = .null }
    /// `true` and `false` as JSON booleans.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// A string literal is a JSON string, never parsed: `"1"` stays text.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An integer literal is an exact number (its decimal text), never a `Double`.
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    /// Elements in written order.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Members in written order; a repeated key replaces the earlier value in place,
    /// as `JSONObject.init(_:)` does.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONObject.Member(key: $0.0, value: $0.1) }))
    }
}

/// A JSON number kept as the exact text the sender wrote.
///
/// The lexeme always matches RFC 8259's number grammar; conversions are
/// explicit and may fail, so callers decide what precision they need.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number exactly as received; store and compare this when precision
    /// matters (`1.0` and `1` differ).
    public let lexeme: String

    /// Accepts only a lexeme that is a valid RFC 8259 number.
    public init?(lexeme: String) {
        let utf8 = Array(lexeme.utf8)
        let valid = utf8.withUnsafeBufferPointer { buffer in
            buffer.count > 0 && JSONNumber.scanLength(buffer, from: 0) == buffer.count
        }
        guard valid else { return nil }
        self.lexeme = lexeme
    }

    init(validatedLexeme: String) {
        self.lexeme = validatedLexeme
    }

    /// The decimal text of an integer: always exact.
    public init(_ value: Int) {
        self.lexeme = String(value)
    }

    /// The decimal text of an integer: always exact (ids above 2^53 survive).
    public init(_ value: Int64) {
        self.lexeme = String(value)
    }

    /// `nil` for infinities and NaN, which JSON cannot express.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(.towardZero), abs(value) < 1e15 {
            self.lexeme = String(Int64(value))
        } else {
            // Swift prints the shortest round-tripping form, e.g. "0.1" or
            // "1e-05"; both are valid JSON numbers.
            self.lexeme = "\(value)"
        }
    }

    /// True when the lexeme has no fraction and no exponent.
    public var isInteger: Bool {
        !lexeme.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }

    /// The exact integer, or `nil` if the lexeme is not an integer or does not fit.
    public var int64Value: Int64? {
        isInteger ? Int64(lexeme) : nil
    }

    /// The nearest `Double` (may round: use `lexeme` when exactness matters).
    public var doubleValue: Double {
        Double(lexeme) ?? .nan
    }

    public var description: String { lexeme }

    /// Length of the number starting at `start`, or `nil` if no valid number starts there.
    /// Shared by the parser and `init(lexeme:)` so both accept exactly the same grammar.
    static func scanLength(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        switch JSONNumber.scan(bytes, from: start) {
        case .success(let end): return end - start
        case .failure: return nil
        }
    }

    enum ScanFailure: Error {
        /// Byte offset of the offending byte and what was expected there.
        case invalid(offset: Int, expected: String)
    }

    /// Scans `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` and returns the end offset.
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Result<Int, ScanFailure> {
        var i = start
        let end = bytes.count
        @inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
        if i < end, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { return .failure(.invalid(offset: i, expected: "a digit")) }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < end, isDigit(bytes[i]) {
                return .failure(.invalid(offset: i, expected: "no leading zero"))
            }
        } else if isDigit(bytes[i]) {
            while i < end, isDigit(bytes[i]) { i += 1 }
        } else {
            return .failure(.invalid(offset: i, expected: "a digit"))
        }
        if i < end, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, isDigit(bytes[i]) else {
                return .failure(.invalid(offset: i, expected: "a digit after the decimal point"))
            }
            while i < end, isDigit(bytes[i]) { i += 1 }
        }
        if i < end, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, isDigit(bytes[i]) else {
                return .failure(.invalid(offset: i, expected: "a digit in the exponent"))
            }
            while i < end, isDigit(bytes[i]) { i += 1 }
        }
        return .success(i)
    }
}

/// An object's members in the order the sender wrote them.
///
/// Keys are unique (the parser rejects duplicates; `subscript(key:)=` replaces).
/// Lookup is linear, which beats hashing for the small objects of webhook payloads.
public struct JSONObject: Sendable, Hashable, Sequence {
    /// One key and its value; uniqueness is kept by `JSONObject`, not here.
    public struct Member: Sendable, Hashable {
        /// The decoded key, escapes resolved.
        public var key: String
        /// A present member: `.null` here differs from a missing key.
        public var value: JSONValue

        /// Unchecked: uniqueness applies only once the member is put into an object.
        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    public private(set) var members: [Member]

    public init() {
        self.members = []
    }

    /// Duplicate keys are allowed: a later one replaces the earlier value, which
    /// keeps its position, so the result has unique keys.
    public init(_ members: [Member]) {
        self.members = []
        self.members.reserveCapacity(members.count)
        for member in members { self[member.key] = member.value }
    }

    init(uniqueMembers: [Member]) {
        self.members = uniqueMembers
    }

    /// Number of members, which is also the number of distinct keys.
    public var count: Int { members.count }
    /// True for `{}` (which mapping conditions read as false).
    public var isEmpty: Bool { members.isEmpty }
    /// Keys in sender order; a new array on each call.
    public var keys: [String] { members.map(\.key) }

    /// Linear lookup. Setting an existing key replaces its value in place (the member
    /// keeps its position), setting `nil` removes it, a new key is appended.
    public subscript(key: String) -> JSONValue? {
        get {
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    members[index].value = newValue
                } else {
                    members.remove(at: index)
                }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// Members in sender order.
    public func makeIterator() -> IndexingIterator<[Member]> {
        members.makeIterator()
    }
}
