import JSON

/// RFC 4180 CSV, written into a byte buffer (one `write(2)` per flush, not per
/// field). Hand-written because the available packages either issue a syscall
/// per byte (CSV.swift) or do not quote line breaks (SwiftCSV).
public struct CSVWriter {
    /// The file's dialect, from the mapping's `delimiter`, `line_ending` and `bom`.
    public struct Format: Sendable, Hashable {
        /// One byte; a field containing it is quoted.
        public var delimiter: UInt8
        /// CRLF unless asked otherwise, as RFC 4180 has it; a field holding CR or LF
        /// is quoted either way.
        public var lineEnding: [UInt8]
        /// A UTF-8 byte order mark first, for spreadsheet programs that would
        /// otherwise guess a legacy encoding (UTF-8 files only).
        public var byteOrderMark: Bool
        /// For ISO-8859-1 and Windows-1252 files; `nil` writes UTF-8.
        public var encoder: TextEncoder?

        /// RFC 4180 defaults: comma, CRLF, no byte order mark, UTF-8.
        public init(delimiter: UInt8 = UInt8(ascii: ","), crlf: Bool = true, byteOrderMark: Bool = false, encoder: TextEncoder? = nil) {
            self.delimiter = delimiter
            self.lineEnding = crlf ? [0x0D, 0x0A] : [0x0A]
            self.byteOrderMark = byteOrderMark && encoder == nil
            self.encoder = encoder
        }
    }

    /// Fixed for the writer's life: every row of a file uses the same dialect.
    public let format: Format
    public private(set) var buffer: [UInt8] = []
    /// One field's encoded bytes, reused from field to field.
    private var scratch: [UInt8] = []

    /// Writes the byte order mark at once when `format` asks for it; `capacity`
    /// only reserves memory, flushing is the caller's call.
    public init(format: Format, capacity: Int = 1 << 16) {
        self.format = format
        buffer.reserveCapacity(capacity)
        if format.byteOrderMark { buffer.append(contentsOf: [0xEF, 0xBB, 0xBF]) }
    }

    /// Writes one record. `guardFormulas[i]` neutralises cell i if it could run
    /// as a spreadsheet formula (before encoding: the guard is ASCII);
    /// `alwaysQuote[i]` quotes cell i even when RFC 4180 does not need it (text
    /// columns: a spreadsheet told to keep quoted fields as text then keeps
    /// `+4670…` and `00123` as written). Returns the characters the encoder
    /// changed; under `.fail` an unencodable character throws and nothing of
    /// the row is written.
    @discardableResult
    public mutating func writeRow(
        _ fields: [String], guardFormulas: [Bool] = [], alwaysQuote: [Bool] = []
    ) throws(UnencodableCharacter) -> [EncodingChange] {
        let start = buffer.count
        var changes: [EncodingChange] = []
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.append(format.delimiter) }
            let guarded = index < guardFormulas.count && guardFormulas[index] ? CSVWriter.neutralise(field) : field
            let quote = index < alwaysQuote.count && alwaysQuote[index]
            if let encoder = format.encoder {
                scratch.removeAll(keepingCapacity: true)
                do throws(UnencodableCharacter) {
                    changes += try encoder.append(guarded, column: index, to: &scratch)
                } catch {
                    buffer.removeSubrange(start...)
                    throw error
                }
                let bytes = scratch
                appendField(bytes: bytes, quote: quote)
            } else {
                appendField(bytes: guarded.utf8, quote: quote)
            }
        }
        buffer.append(contentsOf: format.lineEnding)
        return changes
    }

    /// Hands the bytes written so far to `sink` and empties the buffer.
    public mutating func flush(_ sink: ([UInt8]) throws -> Void) rethrows {
        try sink(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Quotes when asked to, or when the field holds the delimiter, a quote or
    /// a line break (all ASCII, so the test is the same in every encoding).
    mutating func appendField<Bytes: Collection<UInt8>>(bytes: Bytes, quote: Bool) {
        let needsQuotes = quote || bytes.contains { $0 == format.delimiter || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
        if !needsQuotes {
            buffer.append(contentsOf: bytes)
            return
        }
        buffer.append(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { buffer.append(UInt8(ascii: "\"")) }
            buffer.append(byte)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// OWASP's CSV-injection rule: a cell starting with `=`, `+`, `-`, `@`, tab
    /// or CR gets a leading `'`. Plain numbers (`-12.5`) and phone numbers
    /// (`+46 8 123 45 67`) are not formulas and pass unchanged, so payroll
    /// still receives them as they are.
    public static func neutralise(_ field: String) -> String {
        guard let first = field.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return field }
        if isNumberOrPhone(field) { return field }
        return "'" + field
    }

    static func isNumberOrPhone(_ field: String) -> Bool {
        let scalars = Array(field.unicodeScalars)
        guard let first = scalars.first, first == "+" || first == "-" else { return false }
        let rest = scalars.dropFirst()
        guard let firstDigit = rest.first, ("0"..."9").contains(firstDigit) else { return false }
        // Digits with single spaces, dashes (after `+` only) or points/commas (at most one after `-`)
        // between them: no operators, letters or parentheses.
        var previousWasSeparator = false
        var points = 0
        for scalar in rest {
            if ("0"..."9").contains(scalar) {
                previousWasSeparator = false
            } else if scalar == " " || (scalar == "-" && first == "+") || scalar == "." || scalar == "," {
                if previousWasSeparator { return false }
                if scalar == "." || scalar == "," { points += 1 }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator && (first == "+" || points <= 1)
    }

    /// How a JSON value reads in a cell.
    public static func text(_ value: JSONValue?) -> String {
        JSONValue.plainText(value)
    }
}
