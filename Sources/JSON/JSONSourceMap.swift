/// Where each value and key of a parsed file stands in its text.
///
/// Mapping files are compiled long after parsing; the compiler reports an
/// error against a JSON pointer and this map turns it into `line:column`, even
/// for a column inside a string literal full of escapes.
public struct JSONSourceMap: Sendable {
    /// The text as parsed, kept to map offsets inside string literals.
    public let source: [UInt8]
    let values: [JSONPointer: SourcePosition]
    let keys: [JSONPointer: SourcePosition]

    /// Start of the value at `pointer` (its first byte: quote, bracket, digit…).
    public func position(of pointer: JSONPointer) -> SourcePosition? {
        values[pointer]
    }

    /// Start of the key of the member at `pointer` (its opening quote).
    public func keyPosition(of pointer: JSONPointer) -> SourcePosition? {
        keys[pointer]
    }

    /// The source position of the `scalarIndex`-th Unicode scalar of the decoded
    /// string at `pointer`, stepping over escapes such as `\"` or `\u00e9`.
    /// Index == the decoded length gives the closing quote.
    public func position(ofScalar scalarIndex: Int, inStringAt pointer: JSONPointer) -> SourcePosition? {
        guard let start = values[pointer], start.offset < source.count, source[start.offset] == UInt8(ascii: "\"") else {
            return nil
        }
        var offset = start.offset + 1
        var column = start.column + 1
        var decoded = 0
        while offset < source.count, source[offset] != UInt8(ascii: "\"") {
            if decoded == scalarIndex { break }
            let sourceScalars: Int
            let byteLength: Int
            if source[offset] == UInt8(ascii: "\\") {
                if offset + 1 < source.count, source[offset + 1] == UInt8(ascii: "u") {
                    // A surrogate pair is one decoded scalar spelled as twelve bytes.
                    var unit: UInt32 = 0
                    for j in (offset + 2)..<min(offset + 6, source.count) {
                        unit = unit << 4 | UInt32(JSONParserCore.hexValue(source[j]) ?? 0)
                    }
                    let pair = unit >= 0xD800 && unit <= 0xDBFF
                    byteLength = pair ? 12 : 6
                } else {
                    byteLength = 2
                }
                sourceScalars = byteLength
            } else {
                byteLength = JSONSourceMap.utf8Length(leading: source[offset])
                sourceScalars = 1
            }
            offset += byteLength
            column += sourceScalars
            decoded += 1
        }
        guard decoded == scalarIndex else { return nil }
        return SourcePosition(offset: offset, line: start.line, column: column)
    }

    static func utf8Length(leading b: UInt8) -> Int {
        switch b {
        case 0..<0x80: return 1
        case 0xC0..<0xE0: return 2
        case 0xE0..<0xF0: return 3
        default: return 4
        }
    }
}

struct JSONSourceMapBuilder {
    let source: [UInt8]
    var tracker = LineTracker()
    var values: [JSONPointer: SourcePosition] = [:]
    var keys: [JSONPointer: SourcePosition] = [:]

    init(source: [UInt8]) {
        self.source = source
    }

    mutating func recordValue(pointer: JSONPointer, offset: Int) {
        tracker.advance(to: offset, in: source)
        values[pointer] = tracker.position
    }

    mutating func recordKey(pointer: JSONPointer, offset: Int) {
        tracker.advance(to: offset, in: source)
        keys[pointer] = tracker.position
    }

    func build() -> JSONSourceMap {
        JSONSourceMap(source: source, values: values, keys: keys)
    }
}
