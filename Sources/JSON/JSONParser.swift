/// How strict a parse is and what it records.
///
/// Two presets serve the bridge's two kinds of input: `.payload` for webhook
/// bodies (RFC 8259 plus trailing commas, which Jobylon's own documented example
/// contains) and `.mappingFile` for operator-written files (strict RFC 8259,
/// every value's source position recorded for `file:line:column` errors).
public struct JSONParseOptions: Sendable, Hashable {
    /// Accept one comma before `]` or `}`: the only leniency beyond RFC 8259.
    public var allowTrailingCommas: Bool
    /// Maximum nesting of arrays and objects.
    public var maxDepth: Int
    /// Inputs longer than this are refused before parsing.
    public var maxBytes: Int
    /// Build a `JSONSourceMap` (costs time; meant for files, not payloads).
    public var recordPositions: Bool

    /// Defaults: depth 64, 16 MiB, no source map. Prefer a preset (`.payload`,
    /// `.strict`, `.mappingFile`) unless a limit must differ.
    public init(allowTrailingCommas: Bool, maxDepth: Int = 64, maxBytes: Int = 16 << 20, recordPositions: Bool = false) {
        self.allowTrailingCommas = allowTrailingCommas
        self.maxDepth = maxDepth
        self.maxBytes = maxBytes
        self.recordPositions = recordPositions
    }

    /// Webhook payloads: RFC 8259 plus trailing commas, depth 64.
    public static let payload = JSONParseOptions(allowTrailingCommas: true)
    /// Pure RFC 8259, no positions.
    public static let strict = JSONParseOptions(allowTrailingCommas: false)
    /// Mapping and test files: pure RFC 8259 with a source map.
    public static let mappingFile = JSONParseOptions(allowTrailingCommas: false, recordPositions: true)
}

/// A parsed document and what the parse noticed about it.
public struct JSONDocument: Sendable {
    /// Numbers keep their lexeme and objects their member order (see `JSONValue`).
    public var value: JSONValue
    /// The input relied on the trailing-comma leniency (stored as the inbox's `lenient` flag).
    public var usedTrailingCommas: Bool
    /// Present when `recordPositions` was set.
    public var sourceMap: JSONSourceMap?
}

/// The one JSON parser of the bridge.
///
/// Hand-written because nothing available does all three jobs at once:
/// Foundation's parser is slow, turns integers into `Double`s and reports no
/// positions; this one keeps number lexemes, reports `line:column` and a JSON
/// pointer for every error, rejects invalid UTF-8, lone surrogates and
/// duplicate keys, and can extract a few fields without building a tree.
public enum JSONParser {
    /// Parses the text's UTF-8 bytes (copied once); the trailing-comma flag and any
    /// source map are dropped: use `parseDocument` to keep them.
    public static func parse(_ text: String, options: JSONParseOptions = .payload) throws(JSONError) -> JSONValue {
        try parseDocument(Array(text.utf8), options: options).value
    }

    /// Parses bytes as they arrived; the trailing-comma flag and any source map are
    /// dropped: use `parseDocument` to keep them.
    public static func parse(_ bytes: [UInt8], options: JSONParseOptions = .payload) throws(JSONError) -> JSONValue {
        try parseDocument(bytes, options: options).value
    }

    /// The value plus what the parse noticed; with `recordPositions` the source map
    /// holds its own copy of `bytes`.
    public static func parseDocument(_ bytes: [UInt8], options: JSONParseOptions = .payload) throws(JSONError) -> JSONDocument {
        let result: Result<JSONDocument, JSONError> = bytes.withUnsafeBufferPointer { buffer in
            var core = JSONParserCore(bytes: buffer, options: options)
            return Result { () throws(JSONError) in try core.parseDocument() }
        }
        return try result.get()
    }

    /// For a borrowed buffer, without copying it into an array first; the result
    /// keeps no reference to the buffer (a source map copies it).
    public static func parseDocument(_ bytes: UnsafeRawBufferPointer, options: JSONParseOptions = .payload) throws(JSONError) -> JSONDocument {
        var core = JSONParserCore(bytes: bytes.bindMemory(to: UInt8.self), options: options)
        return try core.parseDocument()
    }

    /// Checks that `bytes` is one valid JSON text without building any values.
    public static func validate(_ bytes: [UInt8], options: JSONParseOptions = .payload) throws(JSONError) -> JSONScanResult {
        try JSONFieldScanner(JSONFieldQuery([])).scan(bytes, options: options)
    }
}

/// The parser proper, over a borrowed buffer. One instance parses one input.
struct JSONParserCore {
    enum PathComponent {
        /// The byte range of a key's contents (between the quotes); decoded only on error.
        case key(start: Int, end: Int, escaped: Bool)
        case index(Int)
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let options: JSONParseOptions
    var i = 0
    var usedTrailingCommas = false
    var path: [PathComponent] = []
    var scratch: [UInt8] = []
    /// The field scanner's key ranges of the objects it is inside (see `RawKeySet`).
    var scannedKeys: [(start: Int, end: Int, escaped: Bool)] = []
    var sourceMap: JSONSourceMapBuilder?

    init(bytes: UnsafeBufferPointer<UInt8>, options: JSONParseOptions) {
        self.bytes = bytes
        self.options = options
        // Grown once per document, not doubling from empty at every level.
        path.reserveCapacity(16)
        if options.recordPositions {
            sourceMap = JSONSourceMapBuilder(source: Array(bytes))
        }
    }

    // MARK: Document

    mutating func parseDocument() throws(JSONError) -> JSONDocument {
        try checkStart()
        let value = try parseValue(depth: 0)
        try checkEnd()
        return JSONDocument(value: value, usedTrailingCommas: usedTrailingCommas, sourceMap: sourceMap?.build())
    }

    mutating func checkStart() throws(JSONError) {
        if bytes.count > options.maxBytes {
            throw error(.sizeLimitExceeded(limit: options.maxBytes), at: options.maxBytes)
        }
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw error(.byteOrderMark, at: 0)
        }
        skipWhitespace()
        if i == bytes.count { throw error(.emptyInput, at: i) }
    }

    mutating func checkEnd() throws(JSONError) {
        skipWhitespace()
        if i != bytes.count { throw error(.trailingContent, at: i) }
    }

    // MARK: Errors

    func error(_ kind: JSONError.Kind, at offset: Int) -> JSONError {
        var tracker = LineTracker()
        tracker.advance(to: min(offset, bytes.count), in: bytes)
        return JSONError(kind: kind, position: tracker.position, pointer: currentPointer())
    }

    func currentPointer() -> JSONPointer {
        JSONPointer(
            tokens: path.map { component in
                switch component {
                case .index(let n): return String(n)
                case .key(let start, let end, let escaped): return decodeString(start: start, end: end, escaped: escaped)
                }
            })
    }

    func unexpected(expected: String) -> JSONError {
        if i >= bytes.count { return error(.unexpectedEnd(expected: expected), at: i) }
        return error(.unexpectedByte(bytes[i], expected: expected), at: i)
    }

    // MARK: Lexing

    @inline(__always)
    mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for k in 0..<count {
            guard i + k < bytes.count, bytes[i + k] == start[k] else {
                i += k
                throw unexpected(expected: "'\(literal)'")
            }
        }
        i += count
    }

    /// Validates a string literal whose opening quote is at `i`; leaves `i` after
    /// the closing quote and returns the contents' byte range.
    mutating func scanStringLiteral() throws(JSONError) -> (start: Int, end: Int, escaped: Bool) {
        i += 1
        let start = i
        var escaped = false
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let end = i
                i += 1
                return (start, end, escaped)
            } else if b == UInt8(ascii: "\\") {
                escaped = true
                try scanEscape()
            } else if b < 0x20 {
                throw error(.controlCharacterInString(b), at: i)
            } else if b < 0x80 {
                i += 1
            } else {
                try scanUTF8Sequence()
            }
        }
        throw error(.unexpectedEnd(expected: "'\"' to close the string"), at: i)
    }

    /// Validates one escape starting at the backslash at `i`.
    mutating func scanEscape() throws(JSONError) {
        let escapeStart = i
        i += 1
        guard i < bytes.count else { throw error(.unexpectedEnd(expected: "an escape character"), at: i) }
        switch bytes[i] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
            UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 1
        case UInt8(ascii: "u"):
            i += 1
            let unit = try readHex4()
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw error(.loneSurrogate, at: escapeStart)
                }
                i += 2
                let low = try readHex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw error(.loneSurrogate, at: escapeStart) }
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw error(.loneSurrogate, at: escapeStart)
            }
        default:
            throw error(.invalidEscape(bytes[i]), at: escapeStart)
        }
    }

    mutating func readHex4() throws(JSONError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count, let digit = JSONParserCore.hexValue(bytes[i]) else {
                throw error(.invalidUnicodeEscape, at: i)
            }
            value = value << 4 | UInt32(digit)
            i += 1
        }
        return value
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `i` (Unicode table 3-7: no
    /// overlong forms, no surrogates, nothing above U+10FFFF).
    @inline(__always)
    mutating func scanUTF8Sequence() throws(JSONError) {
        let b0 = bytes[i]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upper = 0x9F
        case 0xF0:
            length = 4
            lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upper = 0x8F
        default: throw error(.invalidUTF8, at: i)
        }
        guard i + length <= bytes.count else { throw error(.invalidUTF8, at: i) }
        let b1 = bytes[i + 1]
        guard b1 >= lower && b1 <= upper else { throw error(.invalidUTF8, at: i) }
        for k in 2..<max(2, length) where bytes[i + k] & 0xC0 != 0x80 {
            throw error(.invalidUTF8, at: i)
        }
        i += length
    }

    /// Decodes an already validated string literal's contents.
    func decodeString(start: Int, end: Int, escaped: Bool) -> String {
        let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
        if !escaped { return String(decoding: slice, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        JSONParserCore.unescape(slice, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    mutating func decodeStringReusingScratch(start: Int, end: Int, escaped: Bool) -> String {
        let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
        if !escaped { return String(decoding: slice, as: UTF8.self) }
        scratch.removeAll(keepingCapacity: true)
        JSONParserCore.unescape(slice, into: &scratch)
        return String(decoding: scratch, as: UTF8.self)
    }

    /// Unescapes validated contents (escapes are known to be well formed).
    static func unescape(_ slice: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var k = 0
        let n = slice.count
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for j in at..<(at + 4) { v = v << 4 | UInt32(hexValue(slice[j]) ?? 0) }
            return v
        }
        while k < n {
            let b = slice[k]
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                k += 1
                continue
            }
            let e = slice[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(k)
                k += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    let low = hex4(k + 2)
                    k += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e)  // " \ /
            }
        }
    }

    static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (scalar >> 6)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (scalar >> 12)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (scalar >> 18)))
            out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    mutating func scanNumber() throws(JSONError) -> (start: Int, end: Int) {
        let start = i
        switch JSONNumber.scan(bytes, from: i) {
        case .success(let end):
            i = end
            return (start, end)
        case .failure(.invalid(let offset, let expected)):
            i = offset
            if offset < bytes.count {
                throw error(.invalidNumber(expected: expected), at: offset)
            }
            throw error(.unexpectedEnd(expected: expected), at: offset)
        }
    }

    // MARK: Building values

    mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard i < bytes.count else { throw unexpected(expected: "a value") }
        if sourceMap != nil { recordValuePosition() }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""):
            let literal = try scanStringLiteral()
            return .string(decodeStringReusingScratch(start: literal.start, end: literal.end, escaped: literal.escaped))
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let range = try scanNumber()
            let lexeme = String(decoding: UnsafeBufferPointer(rebasing: bytes[range.start..<range.end]), as: UTF8.self)
            return .number(JSONNumber(validatedLexeme: lexeme))
        default:
            throw unexpected(expected: "a value")
        }
    }

    mutating func enterContainer(depth: Int) throws(JSONError) -> Int {
        let inner = depth + 1
        if inner > options.maxDepth { throw error(.depthLimitExceeded(limit: options.maxDepth), at: i) }
        i += 1
        skipWhitespace()
        return inner
    }

    /// After a value inside a container: consumes `,` or the closing byte.
    /// Returns true when the container is closed.
    mutating func afterElement(closing: UInt8, expected: String) throws(JSONError) -> Bool {
        skipWhitespace()
        guard i < bytes.count else { throw unexpected(expected: expected) }
        if bytes[i] == closing {
            i += 1
            return true
        }
        guard bytes[i] == UInt8(ascii: ",") else { throw unexpected(expected: expected) }
        let comma = i
        i += 1
        skipWhitespace()
        if i < bytes.count, bytes[i] == closing {
            guard options.allowTrailingCommas else { throw error(.trailingComma, at: comma) }
            usedTrailingCommas = true
            i += 1
            return true
        }
        return false
    }

    mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        let inner = try enterContainer(depth: depth)
        var elements: [JSONValue] = []
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        path.append(.index(0))
        var index = 0
        while true {
            path[path.count - 1] = .index(index)
            elements.append(try parseValue(depth: inner))
            index += 1
            if try afterElement(closing: UInt8(ascii: "]"), expected: "',' or ']'") { break }
        }
        path.removeLast()
        return .array(elements)
    }

    mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        let inner = try enterContainer(depth: depth)
        var members: [JSONObject.Member] = []
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(JSONObject(uniqueMembers: members))
        }
        path.append(.index(0))
        var seen: Set<String>? = nil
        while true {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw unexpected(expected: "a string key") }
            let keyOffset = i
            let literal = try scanStringLiteral()
            path[path.count - 1] = .key(start: literal.start, end: literal.end, escaped: literal.escaped)
            let key = decodeString(start: literal.start, end: literal.end, escaped: literal.escaped)
            if isDuplicate(key, among: members, seen: &seen) {
                throw error(.duplicateKey(key), at: keyOffset)
            }
            if sourceMap != nil { recordKeyPosition(at: keyOffset) }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw unexpected(expected: "':'") }
            i += 1
            skipWhitespace()
            members.append(JSONObject.Member(key: key, value: try parseValue(depth: inner)))
            if try afterElement(closing: UInt8(ascii: "}"), expected: "',' or '}'") { break }
        }
        path.removeLast()
        return .object(JSONObject(uniqueMembers: members))
    }

    /// Linear for small objects, hashed past 16 keys so a hostile body with
    /// 100k keys cannot make the check quadratic.
    func isDuplicate(_ key: String, among members: [JSONObject.Member], seen: inout Set<String>?) -> Bool {
        if seen == nil, members.count < 16 {
            return members.contains { $0.key == key }
        }
        if seen == nil { seen = Set(members.map(\.key)) }
        return seen?.insert(key).inserted == false
    }

    // MARK: Source positions

    mutating func recordValuePosition() {
        let pointer = currentPointer()
        sourceMap?.recordValue(pointer: pointer, offset: i)
    }

    mutating func recordKeyPosition(at offset: Int) {
        let pointer = currentPointer()
        sourceMap?.recordKey(pointer: pointer, offset: offset)
    }
}

/// Turns byte offsets into line and column, moving forward only.
struct LineTracker {
    var offset = 0
    var line = 1
    var column = 1

    mutating func advance(to target: Int, in bytes: UnsafeBufferPointer<UInt8>) {
        while offset < target {
            let b = bytes[offset]
            if b == 0x0A {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                // A byte that starts a scalar moves the column; continuation bytes do not.
                column += 1
            }
            offset += 1
        }
    }

    mutating func advance(to target: Int, in bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { advance(to: target, in: $0) }
    }

    var position: SourcePosition { SourcePosition(offset: offset, line: line, column: column) }
}
