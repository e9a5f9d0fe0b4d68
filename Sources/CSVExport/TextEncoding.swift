import Foundation

/// The character encodings payroll imports read: UTF-8, ISO-8859-1 (Visma
/// Lön's import files) and Windows-1252 (older Windows importers).
///
/// Written by hand: Foundation's `String.data(using:)` refuses a whole string
/// for one character it cannot hold, and iconv's transliteration differs by
/// platform; here every character is decided on its own, the same way
/// everywhere, and every change is reported.
public enum TextEncoding: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case latin1 = "iso-8859-1"
    case windows1252 = "windows-1252"

    /// The mapping file's spellings, `latin1` included.
    public init?(name: String) {
        switch name.lowercased() {
        case "utf-8", "utf8": self = .utf8
        case "iso-8859-1", "latin1", "latin-1": self = .latin1
        case "windows-1252", "cp1252": self = .windows1252
        default: return nil
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
public enum UnencodablePolicy: Sendable, Hashable {
    /// The nearest the encoding can hold: a letter without its accent
    /// (Ş → S, ạ → a, ế → ê where ê exists), a few letters by table (ł → l,
    /// ı → i, œ → oe), typographic quotes and dashes to ASCII; `?` otherwise.
    case transliterate
    /// This (ASCII) character instead.
    case replace(UInt8)
    /// Nothing is written: the period's file is held back whole.
    case fail
}

/// One character the encoder changed, for the export's report: the
/// character and what became of it, never the value around it.
public struct EncodingChange: Sendable, Hashable, CustomStringConvertible {
    /// Index of the column in the row.
    public var column: Int
    /// The character the encoding lacks.
    public var original: Character
    /// What was written instead (`?` when nothing nearer exists).
    public var replacement: String

    public var description: String {
        let code = original.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ")
        return "\(original) (\(code)) → \(replacement)"
    }
}

/// A character that `.fail` refuses: which column, which character.
public struct UnencodableCharacter: Error, Sendable, Hashable {
    /// Index of the column in the row.
    public var column: Int
    /// The refused character (reported by code point, never with its value).
    public var character: Character
    /// The file's encoding.
    public var encoding: TextEncoding
}

/// Turns text into the bytes of a single-byte encoding under a policy.
public struct TextEncoder: Sendable, Hashable {
    /// Never `.utf8` (see `init`).
    public let encoding: TextEncoding
    /// What a character the encoding lacks becomes.
    public let policy: UnencodablePolicy

    /// `encoding` must not be `.utf8`: UTF-8 text needs no encoder.
    public init(encoding: TextEncoding, policy: UnencodablePolicy) {
        self.encoding = encoding
        self.policy = policy
    }

    /// Letters that decomposition does not reduce, and punctuation an older
    /// importer chokes on; each is tried only when the encoding lacks the original.
    static let table: [Character: String] = [
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ŋ": "n", "Ŋ": "N",
        "ĸ": "k", "ſ": "s", "ə": "e", "Ə": "E", "œ": "oe", "Œ": "OE", "ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE",
        "‘": "'", "’": "'", "‚": "'", "“": "\"", "”": "\"", "„": "\"", "–": "-", "—": "-", "…": "...", "•": "*",
        "€": "EUR", "™": "TM", "\u{00A0}": " ", "\u{202F}": " ",
    ]

    /// Appends `text`'s bytes to `bytes`; returns the changes made (column `column`).
    public func append(
        _ text: String, column: Int, to bytes: inout [UInt8]
    ) throws(UnencodableCharacter) -> [EncodingChange] {
        var changes: [EncodingChange] = []
        for character in text {
            if let encoded = encodeExactly(String(character)) {
                bytes.append(contentsOf: encoded)
                continue
            }
            switch policy {
            case .fail:
                throw UnencodableCharacter(column: column, character: character, encoding: encoding)
            case .replace(let byte):
                bytes.append(byte)
                changes.append(EncodingChange(column: column, original: character, replacement: String(UnicodeScalar(byte))))
            case .transliterate:
                let replacement = transliterate(character)
                bytes.append(contentsOf: encodeExactly(replacement) ?? [UInt8(ascii: "?")])
                changes.append(EncodingChange(column: column, original: character, replacement: replacement))
            }
        }
        return changes
    }

    /// The bytes of `text` when every scalar has one.
    func encodeExactly(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            guard let byte = encoding.byte(for: scalar) else {
                // A precomposed form may exist where the decomposed one does not (e + ◌̊ → å).
                let composed = text.precomposedStringWithCanonicalMapping
                if composed != text, composed.unicodeScalars.allSatisfy({ encoding.byte(for: $0) != nil }) {
                    return composed.unicodeScalars.compactMap { encoding.byte(for: $0) }
                }
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }

    /// The nearest text the encoding holds, `?` if none.
    func transliterate(_ character: Character) -> String {
        if let mapped = TextEncoder.table[character], encodeExactly(mapped) != nil { return mapped }
        // Canonical decomposition: the base letter, keeping the first accent when
        // the encoding has that combination (ế → ê in Latin-1), else dropping the accents.
        let scalars = Array(String(character).decomposedStringWithCanonicalMapping.unicodeScalars)
        guard let base = scalars.first, encoding.byte(for: base) != nil else { return "?" }
        if scalars.count > 1 {
            let withFirstMark = String(String.UnicodeScalarView([base, scalars[1]])).precomposedStringWithCanonicalMapping
            if withFirstMark.unicodeScalars.count == 1, encodeExactly(withFirstMark) != nil { return withFirstMark }
        }
        return String(base)
    }
}
