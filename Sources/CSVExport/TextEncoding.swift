import Foundation
import Mapping

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
        // Nearly every value has a byte for each of its scalars: written in one pass,
        // with no Character or String made (the per-character rules below only
        // ever change text that has a scalar without a byte).
        if appendScalars(text, to: &bytes) { return [] }
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

    /// Appends a byte per scalar of `text` and answers true, or appends nothing
    /// and answers false when a scalar has no byte.
    func appendScalars(_ text: String, to bytes: inout [UInt8]) -> Bool {
        let start = bytes.count
        bytes.reserveCapacity(start + text.utf8.count)
        for scalar in text.unicodeScalars {
            guard let byte = encoding.byte(for: scalar) else {
                bytes.removeSubrange(start...)
                return false
            }
            bytes.append(byte)
        }
        return true
    }

    /// The bytes of `text` when every scalar has one, or those of its
    /// precomposed form (e + ◌̊ → å where only å exists).
    func encodeExactly(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        if appendScalars(text, to: &bytes) { return bytes }
        let composed = text.precomposedStringWithCanonicalMapping
        if composed != text, appendScalars(composed, to: &bytes) { return bytes }
        return nil
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
