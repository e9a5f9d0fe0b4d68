/// Compact JSON output with RFC 8259 escaping.
///
/// Writes into a byte array (the store and the HTTP layer want bytes); numbers
/// are written as their lexeme, so parse → write is lossless.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    /// Reserves `capacity` bytes up front; raise it for a large body to avoid regrowth.
    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Compact UTF-8 bytes of one value, as the store and the HTTP layer want them.
    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var writer = JSONWriter()
        writer.write(value)
        return writer.bytes
    }

    /// Compact JSON text of one value (made from the bytes; always valid UTF-8).
    public static func string(_ value: JSONValue) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }

    /// Appends one value with no spaces: members in stored order, numbers as their lexeme.
    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let b): bytes.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): bytes.append(contentsOf: n.lexeme.utf8)
        case .string(let s): writeString(s)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(member.key)
                bytes.append(UInt8(ascii: ":"))
                write(member.value)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Appends a quoted string, escaping only `"`, `\` and control characters;
    /// non-ASCII is written as raw UTF-8, never as `\u` escapes.
    public mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = string
        s.withUTF8 { utf8 in
            var runStart = 0
            for (k, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<k]))
                appendEscape(b)
                runStart = k + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func appendEscape(_ b: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch b {
        case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xF)]])
        }
    }
}

extension JSONWriter {
    /// Indented JSON for people (CLI output, test diffs); same escaping.
    public static func prettyString(_ value: JSONValue, indent: Int = 2) -> String {
        var out = ""
        appendPretty(value, level: 0, indent: indent, to: &out)
        return out
    }

    static func appendPretty(_ value: JSONValue, level: Int, indent: Int, to out: inout String) {
        let pad = String(repeating: " ", count: (level + 1) * indent)
        let closePad = String(repeating: " ", count: level * indent)
        switch value {
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += pad
                appendPretty(item, level: level + 1, indent: indent, to: &out)
                out += index + 1 < items.count ? ",\n" : "\n"
            }
            out += closePad + "]"
        case .object(let object) where !object.isEmpty:
            out += "{\n"
            for (index, member) in object.members.enumerated() {
                out += pad + JSONWriter.string(.string(member.key)) + ": "
                appendPretty(member.value, level: level + 1, indent: indent, to: &out)
                out += index + 1 < object.count ? ",\n" : "\n"
            }
            out += closePad + "}"
        default:
            out += JSONWriter.string(value)
        }
    }
}
