/// Where something is in a JSON text: byte offset, 1-based line, and 1-based
/// column counted in Unicode scalars (what an editor shows), not bytes.
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// Byte offset from the start of the input, 0-based.
    public var offset: Int
    /// 1-based; only LF (0x0A) starts a new line, so a CR before it counts as a column.
    public var line: Int
    /// 1-based, in Unicode scalars: a two-byte `Å` moves it by one.
    public var column: Int

    /// Taken as given, unchecked: the three must describe the same place.
    public init(offset: Int, line: Int, column: Int) {
        self.offset = offset
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }

    /// Text order, by byte offset alone (line and column follow from it).
    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool { lhs.offset < rhs.offset }
}

/// Why a JSON text was refused, with the place in the text and in the document.
///
/// Messages never quote string values from the input (payloads carry personal
/// data); they name bytes only as single ASCII characters or hex. Keys do
/// appear: a duplicate key (clipped to 64 scalars) and the keys of `pointer`.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong. Associated values are bytes, limits and parser-written
    /// expectations, plus the key of `duplicateKey`; never a string value of the input.
    public enum Kind: Sendable, Hashable {
        case emptyInput
        case unexpectedByte(UInt8, expected: String)
        case unexpectedEnd(expected: String)
        case trailingComma
        case trailingContent
        case byteOrderMark
        case invalidEscape(UInt8)
        case invalidUnicodeEscape
        case loneSurrogate
        case invalidUTF8
        case controlCharacterInString(UInt8)
        case invalidNumber(expected: String)
        case duplicateKey(String)
        case depthLimitExceeded(limit: Int)
        case sizeLimitExceeded(limit: Int)
    }

    /// What was wrong, for callers that branch on the fault; `message` is its text.
    public var kind: Kind
    /// Where the fault begins: the offending byte, or e.g. the backslash of a bad
    /// escape, the comma of a trailing comma, the opening quote of a duplicate key.
    public var position: SourcePosition
    /// The member or element being read when the error was found (not just its
    /// container: a bad value of `x` gives `/x`); empty at the top level.
    public var pointer: JSONPointer

    /// Made by the parser; nothing is checked, so `position` and `pointer` are trusted.
    public init(kind: Kind, position: SourcePosition, pointer: JSONPointer) {
        self.kind = kind
        self.position = position
        self.pointer = pointer
    }

    /// The fault in words, without position or pointer; safe to log (see the type).
    public var message: String {
        switch kind {
        case .emptyInput: return "empty input, expected a JSON value"
        case .unexpectedByte(let byte, let expected):
            return "unexpected \(JSONError.describe(byte)), expected \(expected)"
        case .unexpectedEnd(let expected): return "unexpected end of input, expected \(expected)"
        case .trailingComma: return "trailing comma is not allowed here"
        case .trailingContent: return "unexpected content after the JSON value"
        case .byteOrderMark: return "byte order mark is not allowed"
        case .invalidEscape(let byte): return "invalid escape \\\(JSONError.describeBare(byte)) in string"
        case .invalidUnicodeEscape: return "invalid \\u escape: expected four hex digits"
        case .loneSurrogate: return "lone UTF-16 surrogate in \\u escape"
        case .invalidUTF8: return "invalid UTF-8 in string"
        case .controlCharacterInString(let byte):
            return "unescaped control character \(JSONError.hex(byte)) in string"
        case .invalidNumber(let expected): return "invalid number: expected \(expected)"
        case .duplicateKey(let key): return "duplicate key \"\(JSONError.clip(key))\""
        case .depthLimitExceeded(let limit): return "nesting deeper than \(limit) levels"
        case .sizeLimitExceeded(let limit): return "input larger than \(limit) bytes"
        }
    }

    /// `line:column: message (in /pointer)`, the pointer part left out at the top
    /// level; ready to prefix with a file name.
    public var description: String {
        let at = pointer.tokens.isEmpty ? "" : " (in \(pointer))"
        return "\(position): \(message)\(at)"
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "0x\(digits[Int(byte >> 4)])\(digits[Int(byte & 0xF)])"
    }

    static func describeBare(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : hex(byte)
    }

    static func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(UnicodeScalar(byte))'" : "byte \(hex(byte))"
    }

    static func clip(_ key: String) -> String {
        var out = ""
        for scalar in key.unicodeScalars.prefix(64) {
            out.unicodeScalars.append(contentsOf: scalar.escaped(asASCII: false).unicodeScalars)
        }
        return key.unicodeScalars.count > 64 ? out + "…" : out
    }
}
