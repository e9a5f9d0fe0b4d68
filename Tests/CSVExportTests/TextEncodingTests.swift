import Foundation
import Mapping
import TestServers
import Testing

@testable import CSVExport

@Suite("Payroll file encodings")
struct TextEncodingTests {
    /// Names from the Nordic, Polish, Turkish and Vietnamese ranges, typography, and a script no legacy encoding has.
    static let names = [
        "Åsa Öberg-Ærø", "Łukasz Żółć", "Şükrü Iğdır", "Nguyễn Thị Ánh", "Zoë “quoted” – €100", "王小明",
    ]

    /// What each name becomes under `transliterate`.
    static let expected: [TextEncoding: [String]] = [
        .latin1: ["Åsa Öberg-Ærø", "Lukasz Zólc", "Sükrü Igdir", "Nguyên Thi Ánh", "Zoë \"quoted\" - EUR100", "???"],
        .windows1252: ["Åsa Öberg-Ærø", "Lukasz Zólc", "Sükrü Igdir", "Nguyên Thi Ánh", "Zoë “quoted” – €100", "???"],
    ]

    /// Decodes `bytes` with Python's codec `codec`: an independent implementation of the encodings.
    static func pythonDecode(_ bytes: [UInt8], codec: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("enc-\(UUID().uuidString).csv").path
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let finished = try ChildProcess.run([
            "python3", "-c",
            "import sys, json; print(json.dumps(open(sys.argv[1], 'rb').read().decode(sys.argv[2], errors='strict')))",
            file, codec,
        ])
        #expect(finished.status == 0, "python could not decode the file as \(codec)")
        return try JSONDecoder().decode(String.self, from: Data(finished.output))
    }

    @Test("transliterated files decode with Python's codecs", arguments: [(TextEncoding.latin1, "latin-1"), (.windows1252, "cp1252")])
    func transliterationRoundTrip(encoding: TextEncoding, codec: String) throws {
        var writer = CSVWriter(format: .init(crlf: false, encoder: TextEncoder(encoding: encoding, policy: .transliterate)))
        var changed: [EncodingChange] = []
        for name in Self.names { changed += try writer.writeRow([name]) }
        let text = try Self.pythonDecode(writer.buffer, codec: codec)
        let lines = text.split(separator: "\n").map { String($0).replacingOccurrences(of: "\"\"", with: "\"") }
            .map { $0.hasPrefix("\"") && $0.hasSuffix("\"") ? String($0.dropFirst().dropLast()) : $0 }
        #expect(lines == Self.expected[encoding])
        // Every change is reported: character and replacement, no surrounding value.
        #expect(changed.contains(EncodingChange(column: 0, original: "ł", replacement: "l")))
        #expect(changed.contains(EncodingChange(column: 0, original: "Ş", replacement: "S")))
        #expect(changed.contains(EncodingChange(column: 0, original: "王", replacement: "?")))
        #expect(!changed.contains { $0.original == "å" || $0.original == "Å" })
        #expect(changed.first { $0.original == "ł" }.map { "\($0)" } == "ł (U+0142) → l")
    }

    @Test func utf8FilesKeepEveryCharacter() throws {
        var writer = CSVWriter(format: .init(crlf: false))
        for name in Self.names { #expect(try writer.writeRow([name]).isEmpty) }
        let text = try Self.pythonDecode(writer.buffer, codec: "utf-8")
        #expect(text.split(separator: "\n").map { String($0).replacingOccurrences(of: "\"\"", with: "\"") }.count == Self.names.count)
        #expect(text.contains("Nguyễn") && text.contains("王小明"))
    }

    @Test func replaceWritesTheStatedCharacter() throws {
        var writer = CSVWriter(format: .init(crlf: false, encoder: TextEncoder(encoding: .latin1, policy: .replace(UInt8(ascii: "_")))))
        let changes = try writer.writeRow(["Łódź", "Ærø"])
        #expect(try Self.pythonDecode(writer.buffer, codec: "latin-1") == "_ód_,Ærø\n")
        #expect(changes.map(\.column) == [0, 0])
    }

    @Test func failRefusesTheRowAndNamesTheColumn() throws {
        var writer = CSVWriter(format: .init(crlf: false, encoder: TextEncoder(encoding: .windows1252, policy: .fail)))
        try writer.writeRow(["id", "name"])
        let before = writer.buffer
        #expect {
            try writer.writeRow(["7", "Şükrü"])
        } throws: { error in
            (error as? UnencodableCharacter) == UnencodableCharacter(column: 1, character: "Ş", encoding: .windows1252)
        }
        #expect(writer.buffer == before, "nothing of a refused row is written")
    }

    @Test func theFormulaGuardHoldsInEveryEncoding() throws {
        for encoding in TextEncoding.allCases {
            let encoder = encoding == .utf8 ? nil : TextEncoder(encoding: encoding, policy: .transliterate)
            var writer = CSVWriter(format: .init(crlf: false, encoder: encoder))
            try writer.writeRow(["=HYPERLINK(\"x\")", "+46701234567", "@SUM(A1)"], guardFormulas: [true, true, true])
            let text = String(decoding: writer.buffer, as: UTF8.self)
            #expect(text == "\"'=HYPERLINK(\"\"x\"\")\",+46701234567,'@SUM(A1)\n", "\(encoding)")
        }
    }

    @Test func windows1252HasItsExtrasAndNotTheUnassignedBytes() {
        #expect(TextEncoding.windows1252.byte(for: "€") == 0x80)
        #expect(TextEncoding.windows1252.byte(for: "Ÿ") == 0x9F)
        #expect(TextEncoding.windows1252.byte(for: "\u{81}") == nil)
        #expect(TextEncoding.latin1.byte(for: "\u{81}") == 0x81)
        #expect(TextEncoding.latin1.byte(for: "€") == nil)
        #expect(TextEncoding(name: "latin1") == .latin1)
        #expect(TextEncoding(name: "ebcdic") == nil)
    }
}
