import Foundation
import Mapping

/// A field longer than its width under `overflow: fail`: which column.
public struct FixedWidthOverflow: Error, Sendable, Hashable {
    /// Index of the column in the row.
    public var column: Int
    /// The column's width.
    public var width: Int
    /// How many characters the value had (never the value: it may be personal data).
    public var length: Int
}

/// Fixed-width records, written into a byte buffer like `CSVWriter`. Each
/// field is padded or cut to its width in characters as written (bytes in
/// the single-byte encodings, Unicode scalars in UTF-8); line breaks and
/// other control characters inside a value become spaces (reported), so a
/// record never breaks. No formula guard: these files are read by import
/// programs, not spreadsheets. Hand-written: no package writes fixed-width
/// records in the Nordic payroll encodings.
public struct FixedWidthWriter {
    /// Per column, in order.
    public let fields: [FixedWidthField]
    /// CRLF, LF or nothing between records.
    public let terminator: [UInt8]
    /// `nil` writes UTF-8.
    public let encoder: TextEncoder?
    public private(set) var buffer: [UInt8] = []

    /// `capacity` only reserves memory.
    public init(fields: [FixedWidthField], terminator: [UInt8], encoder: TextEncoder?, capacity: Int = 1 << 16) {
        self.fields = fields
        self.terminator = terminator
        self.encoder = encoder
        buffer.reserveCapacity(capacity)
    }

    /// What writing a record changed or refused.
    public enum Problem: Error, Sendable, Hashable {
        case unencodable(UnencodableCharacter)
        case overflow(FixedWidthOverflow)
    }

    /// One change the writer made that is not an encoding change: a value cut
    /// to its width, or a control character made a space.
    public struct Change: Sendable, Hashable, CustomStringConvertible {
        /// Index of the column in the row.
        public var column: Int
        /// Worded without the value.
        public var what: String
        public var description: String { what }
    }

    /// Writes one record; nothing of it is written when it throws.
    @discardableResult
    public mutating func writeRow(_ values: [String]) throws(Problem) -> (encoding: [EncodingChange], layout: [Change]) {
        var encodingChanges: [EncodingChange] = []
        var layoutChanges: [Change] = []
        var record: [UInt8] = []
        for (index, field) in fields.enumerated() {
            // Composed first (NFC): a decomposed Å (A + ring) takes one place, and a cut cannot strip an accent.
            var text = (index < values.count ? values[index] : "").precomposedStringWithCanonicalMapping
            if text.unicodeScalars.contains(where: FixedWidthWriter.breaksRecord) {
                text = String(String.UnicodeScalarView(text.unicodeScalars.map { FixedWidthWriter.breaksRecord($0) ? " " : $0 }))
                layoutChanges.append(Change(column: index, what: "a line break or control character became a space"))
            }
            // Characters as written: a byte each in the single-byte encodings, a scalar in UTF-8.
            var value: [UInt8] = []
            let length: Int
            if let encoder {
                do throws(UnencodableCharacter) {
                    encodingChanges += try encoder.append(text, column: index, to: &value)
                } catch {
                    throw .unencodable(error)
                }
                length = value.count
            } else {
                length = text.unicodeScalars.count
            }
            if length > field.width {
                guard field.cut else { throw .overflow(FixedWidthOverflow(column: index, width: field.width, length: length)) }
                layoutChanges.append(Change(column: index, what: "cut from \(length) to \(field.width) characters"))
                // On a character boundary: never inside a UTF-8 sequence.
                if encoder == nil {
                    text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(field.width)))
                } else {
                    value.removeLast(length - field.width)
                }
            }
            if encoder == nil { value = Array(text.utf8) }
            let padding = [UInt8](repeating: field.pad, count: field.width - min(length, field.width))
            if !field.alignRight {
                record += value + padding
            } else if field.pad == UInt8(ascii: "0") && value.first == UInt8(ascii: "-") && !padding.isEmpty {
                record += [UInt8(ascii: "-")] + padding + value.dropFirst()  // -0012, not 00-12
            } else {
                record += padding + value
            }
        }
        buffer += record
        buffer += terminator
        return (encodingChanges, layoutChanges)
    }

    /// Control characters, and the line and paragraph separators readers split on.
    static func breaksRecord(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    /// Hands the bytes written so far to `sink` and empties the buffer.
    public mutating func flush(_ sink: ([UInt8]) throws -> Void) rethrows {
        try sink(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
