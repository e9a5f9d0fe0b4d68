import DurableFiles
import Foundation
import JSON
import Logging
import Mapping
import TestServers
import Testing

@testable import CSVExport
@testable import Clocks
@testable import Domain
@testable import StoreSQLite
@testable import TestSupport

@Suite("Fixed-width payroll records")
struct FixedWidthWriterTests {
    static let layout = [
        FixedWidthField(width: 6, alignRight: true, pad: UInt8(ascii: "0")),  // employee number
        FixedWidthField(width: 10),  // name
        FixedWidthField(width: 8, alignRight: true),  // amount
    ]

    @Test func fieldsArePaddedAlignedAndTerminated() throws {
        var writer = FixedWidthWriter(fields: Self.layout, terminator: [0x0D, 0x0A], encoder: nil)
        try writer.writeRow(["42", "Åsa", "12500.50"])
        try writer.writeRow(["-7", "", "-3"])
        #expect(String(decoding: writer.buffer, as: UTF8.self) == "000042Åsa       12500.50\r\n-00007                -3\r\n")
    }

    @Test func overflowFailsOrCutsAsTheColumnSays() throws {
        var strict = FixedWidthWriter(fields: [FixedWidthField(width: 3)], terminator: [0x0A], encoder: nil)
        #expect(throws: FixedWidthWriter.Problem.overflow(FixedWidthOverflow(column: 0, width: 3, length: 4))) { try strict.writeRow(["abcd"]) }
        #expect(strict.buffer.isEmpty, "nothing of a refused record is written")
        var cutting = FixedWidthWriter(fields: [FixedWidthField(width: 3, cut: true), FixedWidthField(width: 3)], terminator: [], encoder: nil)
        let (_, layout) = try cutting.writeRow(["Łukasz", "a\nb"])
        #expect(String(decoding: cutting.buffer, as: UTF8.self) == "Łuka b", "cut on characters, never inside one; no terminator")
        #expect(
            layout == [
                .init(column: 0, what: "cut from 6 to 3 characters"), .init(column: 1, what: "a line break or control character became a space"),
            ])
        #expect(!"\(layout)".contains("Łukasz"), "changes are worded without the value")
    }

    /// Widths count characters as written: transliteration may lengthen a
    /// value (œ → oe), and the single-byte encodings count bytes.
    @Test("Python's codecs read every field at its offset", arguments: [("latin1", "latin-1"), ("windows-1252", "cp1252"), ("utf-8", "utf-8")])
    func pythonReadsTheFieldsAtTheirOffsets(encoding: String, codec: String) throws {
        let text = TextEncoding(name: encoding) ?? .utf8
        let encoder = text == .utf8 ? nil : TextEncoder(encoding: text, policy: .transliterate)
        var writer = FixedWidthWriter(
            fields: [FixedWidthField(width: 8), FixedWidthField(width: 5, alignRight: true)], terminator: [0x0A], encoder: encoder)
        let names = ["Åsa Öberg", "Œuvre", "Şükrü", "Nguyễn", "Zoë €"]
        for (index, name) in names.enumerated() {
            var cutting = writer
            _ = try? cutting.writeRow([name, "\(index)"])
            if cutting.buffer.count > writer.buffer.count { writer = cutting } else { try writer.writeRow([String(name.prefix(8)), "\(index)"]) }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fw-\(UUID().uuidString).txt").path
        _ = FileManager.default.createFile(atPath: file, contents: Data(writer.buffer))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let finished = try ChildProcess.run([
            "python3", "-c",
            "import sys, json; print(json.dumps([[l[:8], l[8:13]] for l in open(sys.argv[1], encoding=sys.argv[2], newline='').read().split('\\n')[:-1]]))",
            file, codec,
        ])
        let records = try JSONDecoder().decode([[String]].self, from: Data(finished.output))
        #expect(records.count == names.count, "\(finished.text)")
        for (index, record) in records.enumerated() {
            #expect(record.count == 2 && record[1] == String(repeating: " ", count: 4) + "\(index)", "\(record)")
        }
        if text == .latin1 { #expect(records.map { $0[0] } == ["Åsa Öber", "OEuvre  ", "Sükrü   ", "Nguyên  ", "Zoë EUR "]) }
        if text == .utf8 { #expect(records.map { $0[0] } == ["Åsa Öber", "Œuvre   ", "Şükrü   ", "Nguyễn  ", "Zoë €   "]) }
    }

    @Test func anOverflowHoldsThePeriodBackUntilTheMappingCutsIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-fw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        let store = try SQLiteStore(directory: root + "/data", logger: Logger(label: "test"))
        func mapping(overflow: String) throws -> MappingFile {
            let text = """
                {"name": "hires", "when": {"event": "candidate/new"},
                 "csv": {"file": "\(root)/exports/hires-{{ period.date }}.txt", "format": "fixed_width", "encoding": "latin1",
                         "line_ending": "crlf", "time_zone": "Europe/Stockholm",
                         "columns": [{"name": "id", "value": "{{ candidate.id }}", "width": 4, "align": "right", "pad": "0"},
                                     {"name": "name", "value": "{{ candidate.first_name }}", "width": 5, "overflow": "\(overflow)"}]}}
                """
            let (compiled, diagnostics) = MappingCompiler.compile(file: "hires.json", bytes: Array(text.utf8))
            return try #require(compiled, "\(diagnostics)")
        }
        let registry = MappingRegistry(MappingSet(mappings: [try mapping(overflow: "fail")], variables: VariableSource(environment: [:])))
        let clock = ManualWallClock(now: Timestamp(seconds: Int64(CivilCalendar.daysFromCivil(2026, 3, 27)) * 86_400 + 12 * 3600))
        let service = CSVExportService(
            registry: registry, exporter: CSVExporter(store: store, registry: registry), io: BlockingIOPool(threads: 1), clock: clock,
            owner: "daemon", logger: Logger(label: "test"))
        let executor = CSVExecutor(registry: registry, store: store, clock: clock)
        _ = service.tick()
        for (id, name) in [("7", "Bo"), ("8", "Alexandra")] {
            let payload: JSONValue = [
                "row_key": .string(id), "received_at": .string(MappingClock.iso8601(milliseconds: clock.now().milliseconds)),
                "row": ["id": .string(id), "name": .string(name)],
            ]
            let job = ClaimedJob(
                id: Int64(id) ?? 1, eventID: 1, mapping: "hires", item: "", kind: "csv", effectKey: id, payload: JSONWriter.bytes(payload),
                attempt: 1, companyID: "c", subjectID: id)
            _ = await executor.execute(job, logger: Logger(label: "test"))
        }
        clock.advance(by: .seconds(18 * 3600))
        _ = service.tick()
        let file = root + "/exports/hires-2026-03-27.txt"
        #expect(!FileManager.default.fileExists(atPath: file), "held back whole: no file, not even a partial one")
        let error = CSVExportError.overflow(mapping: "hires", row: 2, column: "name", width: 5, length: 9)
        #expect("\(error)".hasPrefix("ALERT hires: data row 2, column name: 9 characters do not fit its width 5"))
        registry.replace(with: MappingSet(mappings: [try mapping(overflow: "cut")], variables: VariableSource(environment: [:])))
        _ = service.tick()
        #expect(FileManager.default.contents(atPath: file).map { [UInt8]($0) } == Array("0007Bo   \r\n0008Alexa\r\n".utf8))
    }

    @Test func decomposedLettersTakeOnePlaceAndSeparatorsNeverBreakARecord() throws {
        var writer = FixedWidthWriter(fields: [FixedWidthField(width: 3, cut: true), FixedWidthField(width: 3)], terminator: [0x0A], encoder: nil)
        // "Åsa" written as A + combining ring: three places once composed; a cut never strips the ring.
        try writer.writeRow(["A\u{030A}sa\u{030A}", "a\u{2028}b"])
        #expect(String(decoding: writer.buffer, as: UTF8.self) == "Åsåa b\n")
    }
}
