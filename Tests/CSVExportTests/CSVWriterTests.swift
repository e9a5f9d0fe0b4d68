import Foundation
import TestServers
import Testing

@testable import CSVExport

@Suite("CSV writer")
struct CSVWriterTests {
    func write(_ rows: [[String]], _ format: CSVWriter.Format = .init(), guard guardFormulas: [Bool] = []) -> String {
        var writer = CSVWriter(format: format)
        // UTF-8 has every character: the throwing path is the encoder's.
        for row in rows { _ = try? writer.writeRow(row, guardFormulas: guardFormulas) }
        return String(decoding: writer.buffer, as: UTF8.self)
    }

    @Test func quotesOnlyWhatNeedsIt() {
        #expect(write([["a", "b c", "d,e", "f\"g", "h\ni", "j\rk", ""]]) == "a,b c,\"d,e\",\"f\"\"g\",\"h\ni\",\"j\rk\",\r\n")
        #expect(write([["x;y", "z,w"]], .init(delimiter: UInt8(ascii: ";"), crlf: false)) == "\"x;y\";z,w\n")
        #expect(write([["a\tb", "c"]], .init(delimiter: 0x09)) == "\"a\tb\"\tc\r\n")
    }

    @Test func byteOrderMarkOnce() throws {
        var writer = CSVWriter(format: .init(byteOrderMark: true))
        try writer.writeRow(["Förnamn"])
        try writer.writeRow(["Åsa"])
        #expect(Array(writer.buffer.prefix(3)) == [0xEF, 0xBB, 0xBF])
        #expect(String(decoding: writer.buffer.dropFirst(3), as: UTF8.self) == "Förnamn\r\nÅsa\r\n")
    }

    @Test func formulaGuard() {
        #expect(CSVWriter.neutralise("=SUM(A1:A9)") == "'=SUM(A1:A9)")
        #expect(CSVWriter.neutralise("@cmd") == "'@cmd")
        #expect(CSVWriter.neutralise("+1+1") == "'+1+1")
        #expect(CSVWriter.neutralise("-2+3") == "'-2+3")
        #expect(CSVWriter.neutralise("\tx") == "'\tx")
        #expect(CSVWriter.neutralise("-12.5") == "-12.5")
        #expect(CSVWriter.neutralise("+46 8 123 45 67") == "+46 8 123 45 67")
        #expect(CSVWriter.neutralise("+46-8-1234567") == "+46-8-1234567")
        #expect(CSVWriter.neutralise("Bruce") == "Bruce")
        #expect(write([["=1", "=1"]], guard: [true, false]) == "'=1,=1\r\n")
    }

    /// Round trip through Python's csv module: an independent parser.
    @Test("round trip through Python's csv module", arguments: [(",", true, false), (";", false, false), ("\t", true, false), (",", true, true)])
    func pythonRoundTrip(delimiter: String, crlf: Bool, guarded: Bool) throws {
        var rng = SystemRandomNumberGenerator()
        let pool = ["a", "Å", "😀", ",", ";", "\t", "\"", "\n", "\r\n", " ", "=", "+", "@", "-", "+46 8", "-1.5", ""]
        let rows: [[String]] = (0..<200).map { _ in
            (0..<5).map { _ in (0..<Int.random(in: 0...6, using: &rng)).map { _ in pool.randomElement(using: &rng) ?? "" }.joined() }
        }
        var writer = CSVWriter(format: .init(delimiter: UInt8(ascii: Unicode.Scalar(delimiter) ?? ","), crlf: crlf))
        for row in rows { try writer.writeRow(row, guardFormulas: Array(repeating: guarded, count: row.count)) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("csv-\(UUID().uuidString).csv").path
        _ = FileManager.default.createFile(atPath: file, contents: Data(writer.buffer))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let finished = try ChildProcess.run([
            "python3", "-c",
            """
            import csv, json, sys
            with open(sys.argv[1], newline='', encoding='utf-8') as f:
                print(json.dumps(list(csv.reader(f, delimiter=sys.argv[2]))))
            """, file, delimiter,
        ])
        let parsed = try JSONDecoder().decode([[String]].self, from: Data(finished.output))
        #expect(parsed == (guarded ? rows.map { $0.map(CSVWriter.neutralise) } : rows))
    }
}
