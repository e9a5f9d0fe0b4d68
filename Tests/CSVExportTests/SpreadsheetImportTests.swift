import Foundation
import JSON
import TestServers
import Testing

@testable import CSVExport
@testable import Clocks
@testable import Domain
@testable import TestSupport

/// The nightly file as a payroll clerk opens it: imported by LibreOffice Calc
/// (headless, the real program) with "quoted field as text", cells read back
/// from the spreadsheet it saved.
@Suite("Payroll files imported by LibreOffice Calc", .serialized)
struct SpreadsheetImportTests {
    /// One cell as Calc stored it: its value type (`string`, `float`, `date`) and text.
    struct Cell: Decodable, Equatable, CustomStringConvertible {
        var type: String
        var text: String
        var description: String { "\(type):\(text)" }
    }

    /// Imports `file` with LibreOffice's CSV filter (`separator`, text delimiter
    /// `"`, `charset` as LibreOffice numbers it, "quoted field as text" on,
    /// "detect special numbers" on), saves it as flat ODS and reads every cell.
    static func importWithCalc(_ file: String, separator: Character, charset: Int) throws -> [[Cell]] {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("jb-calc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let soffice = ["/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let soffice else {
            Issue.record("LibreOffice Calc is missing: scripts/install-deps.sh --test installs libreoffice-calc-nogui")
            return []
        }
        // Tokens: separator, text delimiter, charset, first line, column formats (none),
        // language (en-US), quoted field as text, detect special numbers.
        let options = "CSV:\(separator.asciiValue ?? 44),34,\(charset),1,,1033,true,true"
        let convert = try ChildProcess.run([
            soffice, "--headless", "--norestore", "-env:UserInstallation=file://\(work)/profile", "--infilter=\(options)",
            "--convert-to", "fods", "--outdir", work, file,
        ])
        let fods = work + "/" + ((file as NSString).lastPathComponent as NSString).deletingPathExtension + ".fods"
        #expect(convert.status == 0 && FileManager.default.fileExists(atPath: fods), "soffice could not import \(file)")
        let read = try ChildProcess.run([
            "python3", "-c",
            """
            import sys, json, xml.etree.ElementTree as ET
            T = 'urn:oasis:names:tc:opendocument:xmlns:table:1.0'
            O = 'urn:oasis:names:tc:opendocument:xmlns:office:1.0'
            X = 'urn:oasis:names:tc:opendocument:xmlns:text:1.0'
            rows = []
            for row in ET.parse(sys.argv[1]).iter('{%s}table-row' % T):
                cells = []
                for cell in row.findall('{%s}table-cell' % T):
                    repeat = int(cell.get('{%s}number-columns-repeated' % T, '1'))
                    text = '\\n'.join(''.join(p.itertext()) for p in cell.findall('{%s}p' % X))
                    cells += [{'type': cell.get('{%s}value-type' % O, ''), 'text': text}] * min(repeat, 64)
                while cells and cells[-1]['type'] == '': cells.pop()
                if cells: rows.append(cells)
            print(json.dumps(rows))
            """,
            fods,
        ])
        return try JSONDecoder().decode([[Cell]].self, from: Data(read.output))
    }

    static let typedColumns = """
        [{"name": "Telefon", "value": "{{ candidate.phone_number }}"},
         {"name": "Anställningsnummer", "value": "{{ candidate.internal_id }}"},
         {"name": "Namn", "value": "{{ candidate.first_name }}"},
         {"name": "Anteckning", "value": "{{ candidate.message }}"},
         {"name": "Lön", "value": "{{ candidate.data.salary }}", "type": "number"},
         {"name": "Startdatum", "value": "{{ candidate.data.startingdate }}", "type": "date"}]
        """

    static func row(phone: String, employee: String, name: String, note: String, salary: JSONValue, start: String) -> JSONValue {
        [
            "Telefon": .string(phone), "Anställningsnummer": .string(employee), "Namn": .string(name), "Anteckning": .string(note),
            "Lön": salary, "Startdatum": .string(start),
        ]
    }

    @Test("text stays text, numbers and dates are typed", arguments: [("utf-8", 76), ("latin1", 12), ("windows-1252", 1)])
    func calcKeepsTextExactly(encoding: String, charset: Int) async throws {
        let s = try CSVExportTests.setup(encoding: #""encoding": "\#(encoding)""#, columns: Self.typedColumns)
        _ = s.service.tick()
        await CSVExportTests.stage(
            s, id: "p1",
            row: Self.row(
                phone: "+46701234567", employee: "00123", name: "Åsa Öberg", note: "=1+1",
                salary: .number(JSONNumber(lexeme: "12500.5") ?? JSONNumber(0)), start: "2026-04-01"))
        await CSVExportTests.stage(
            s, id: "p2", row: Self.row(phone: "0701234567", employee: "0042", name: "Zoë; \"Z\"", note: "-5", salary: -3, start: ""))
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        let file = s.exportDir + "/hires-2026-03-27.csv"
        let cells = try Self.importWithCalc(file, separator: ";", charset: charset)
        #expect(cells.count == 3, "\(cells)")
        guard cells.count == 3 else { return }
        #expect(cells[0].map(\.text) == ["Telefon", "Anställningsnummer", "Namn", "Anteckning", "Lön", "Startdatum"])
        #expect(cells[0].allSatisfy { $0.type == "string" })
        #expect(
            cells[1] == [
                Cell(type: "string", text: "+46701234567"), Cell(type: "string", text: "00123"), Cell(type: "string", text: "Åsa Öberg"),
                // The formula guard still holds: the cell is text, never a formula.
                Cell(type: "string", text: "'=1+1"), Cell(type: "float", text: "12500.5"), Cell(type: "date", text: "2026-04-01"),
            ])
        #expect(
            Array(cells[2].prefix(5)) == [
                Cell(type: "string", text: "0701234567"), Cell(type: "string", text: "0042"), Cell(type: "string", text: "Zoë; \"Z\""),
                Cell(type: "string", text: "-5"), Cell(type: "float", text: "-3"),
            ])
    }

    /// The defect the column types fix: the same values written without quotes
    /// (as the writer did before) lose their `+` and leading zeros in Calc.
    @Test func unquotedTextLosesItsPlusAndZeros() throws {
        var writer = CSVWriter(format: .init(delimiter: UInt8(ascii: ";")))
        try writer.writeRow(["+46701234567", "00123"])
        var quoted = CSVWriter(format: .init(delimiter: UInt8(ascii: ";")))
        try quoted.writeRow(["+46701234567", "00123"], alwaysQuote: [true, true])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-calc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = FileManager.default.createFile(atPath: directory + "/bare.csv", contents: Data(writer.buffer))
        _ = FileManager.default.createFile(atPath: directory + "/quoted.csv", contents: Data(quoted.buffer))
        let bare = try Self.importWithCalc(directory + "/bare.csv", separator: ";", charset: 76)
        #expect(bare.first?.map(\.type) == ["float", "float"], "\(bare)")
        let kept = try Self.importWithCalc(directory + "/quoted.csv", separator: ";", charset: 76)
        #expect(kept.first == [Cell(type: "string", text: "+46701234567"), Cell(type: "string", text: "00123")])
    }
}
