/// The character encodings payroll imports read: UTF-8, ISO-8859-1 (Visma
/// Lön's import files) and Windows-1252 (older Windows importers).
///
/// Named here, where the mapping language reads `encoding`, so the names and
/// their aliases exist once; `TextEncoder` (CSVExport) writes with it. The
/// byte tables are by hand: Foundation's `String.data(using:)` refuses a
/// whole string for one character it cannot hold.
public enum TextEncoding: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case latin1 = "iso-8859-1"
    case windows1252 = "windows-1252"

    /// The mapping file's spellings (as schema.json lists them): the names, and `latin1`.
    public init?(name: String) {
        if name.lowercased() == "latin1" {
            self = .latin1
        } else {
            self.init(rawValue: name.lowercased())
        }
    }

    /// The byte for `scalar`, or `nil` when this encoding has none (never for UTF-8, which is not single-byte).
    public func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = scalar.value
        switch self {
        case .utf8:
            return value < 0x80 ? UInt8(value) : nil
        case .latin1:
            return value <= 0xFF ? UInt8(value) : nil
        case .windows1252:
            if value < 0x80 || (0xA0...0xFF).contains(value) { return UInt8(value) }
            return TextEncoding.windows1252Extras[value]
        }
    }

    /// Windows-1252's 0x80–0x9F block (0x81, 0x8D, 0x8F, 0x90 and 0x9D are unassigned).
    static let windows1252Extras: [UInt32: UInt8] = [
        0x20AC: 0x80, 0x201A: 0x82, 0x0192: 0x83, 0x201E: 0x84, 0x2026: 0x85, 0x2020: 0x86, 0x2021: 0x87, 0x02C6: 0x88,
        0x2030: 0x89, 0x0160: 0x8A, 0x2039: 0x8B, 0x0152: 0x8C, 0x017D: 0x8E, 0x2018: 0x91, 0x2019: 0x92, 0x201C: 0x93,
        0x201D: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x02DC: 0x98, 0x2122: 0x99, 0x0161: 0x9A, 0x203A: 0x9B,
        0x0153: 0x9C, 0x017E: 0x9E, 0x0178: 0x9F,
    ]
}

/// What happens to a character the file's encoding cannot hold; it is never
/// dropped silently.
public enum UnencodablePolicy: Sendable, Hashable, CustomStringConvertible {
    /// The nearest the encoding can hold: a letter without its accent
    /// (Ş → S, ạ → a, ế → ê where ê exists), a few letters by table (ł → l,
    /// ı → i, œ → oe), typographic quotes and dashes to ASCII; `?` otherwise.
    case transliterate
    /// This (ASCII) character instead.
    case replace(UInt8)
    /// Nothing is written: the period's file is held back whole.
    case fail

    /// The mapping file's word for it.
    public var description: String {
        switch self {
        case .transliterate: return "transliterate"
        case .replace: return "replace"
        case .fail: return "fail"
        }
    }
}
