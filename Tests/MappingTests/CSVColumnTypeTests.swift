import Foundation
import JSON
import Testing

@testable import Mapping
@testable import TestSupport

@Suite("CSV column types")
struct CSVColumnTypeTests {
    static func compile(_ columns: String, delimiter: String = ";") -> (MappingFile?, [MappingDiagnostic]) {
        let text = """
            {"name": "m", "when": {"event": "candidate/new"},
             "csv": {"file": "/tmp/x-{{ period.date }}.csv", "delimiter": "\(delimiter)", "columns": \(columns)}}
            """
        return MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8))
    }

    static func plan(_ mapping: MappingFile, _ data: String) throws -> MappingResult {
        let event = MappingEvent(type: "candidate", action: "new", data: try JSONParser.parse(Array(data.utf8)), receivedAt: "", entityKey: "k")
        return mapping.plan(event, now: "2026-01-01T00:00:00.000Z")
    }

    @Test func typedValuesAreCheckedWhenTheEventIsPlanned() throws {
        let columns = #"""
            [{"name": "Lön", "value": "{{ candidate.data.salary }}", "type": "number"},
             {"name": "Start", "value": "{{ candidate.data.start }}", "type": "date"},
             {"name": "Telefon", "value": "{{ candidate.phone_number }}"}]
            """#
        let mapping = try #require(Self.compile(columns).0)
        guard case .csv(let csv) = mapping.target else {
            Issue.record("a csv mapping")
            return
        }
        #expect(csv.columns.map(\.type) == [.number, .date, .text])
        guard case .planned = try Self.plan(mapping, #"{"candidate": {"data": {"salary": 12500.5, "start": "2026-04-01"}, "phone_number": "+4670"}}"#)
        else {
            Issue.record("a number and an ISO date plan")
            return
        }
        // An empty value is an empty cell, not an error.
        guard case .planned = try Self.plan(mapping, #"{"candidate": {"data": {"salary": null, "start": ""}}}"#) else {
            Issue.record("empty typed cells plan")
            return
        }
        let notANumber = try Self.plan(mapping, #"{"candidate": {"data": {"salary": "12 500 kr", "start": "2026-04-01"}}}"#)
        #expect(
            notANumber
                == .failed("m: csv.columns[Lön]: type number: the value is not a number (an optional -, digits, at most one decimal mark . or ,)"))
        let notADate = try Self.plan(mapping, #"{"candidate": {"data": {"salary": 1, "start": "01/04/2026"}}}"#)
        #expect(notADate == .failed("m: csv.columns[Start]: type date: the value is not a yyyy-MM-dd date (use the date filter)"))
        // The messages name the rule, never the value.
        #expect(!"\(notANumber)\(notADate)".contains("12 500") && !"\(notADate)".contains("01/04"))
    }

    @Test func aCommaDecimalIsRefusedInACommaSeparatedFile() {
        #expect(CSVColumnType.number.problem(with: "1234,50", delimiter: ";") == nil)
        #expect(CSVColumnType.number.problem(with: "1234,50", delimiter: ",") != nil)
        #expect(CSVColumnType.number.problem(with: "1234.50", delimiter: ",") == nil)
    }

    @Test func anUnknownTypeStopsTheCompilerAtItsPath() {
        let diagnostics = Self.compile(#"[{"name": "a", "value": "x", "type": "integer"}]"#).1
        #expect(diagnostics.contains { $0.severity == .error && $0.pointer == "/csv/columns/0/type" }, "\(diagnostics)")
    }

    @Test func datesFollowTheCalendar() {
        for valid in ["2024-02-29", "2026-12-31", "2000-02-29", "0001-01-01"] { #expect(CSVColumnType.isISODate(valid), "\(valid)") }
        for invalid in ["2025-02-29", "1900-02-29", "2026-13-01", "2026-04-31", "2026-4-01", "2026-04-01T00:00", "２０２６-04-01", "2026-00-10"] {
            #expect(!CSVColumnType.isISODate(invalid), "\(invalid)")
        }
    }

    /// The number rule by hand equals the regular expression it states, on
    /// random strings over the characters that matter.
    @Test("the number check equals its regular expression", arguments: [true, false])
    func numberCheckEqualsTheRegularExpression(commaAllowed: Bool) throws {
        let pattern = try NSRegularExpression(pattern: commaAllowed ? #"^-?[0-9]+([.,][0-9]+)?$"# : #"^-?[0-9]+(\.[0-9]+)?$"#)
        var rng = SeededGenerator(seed: commaAllowed ? 71 : 72)
        let alphabet = Array("0123456789-.,+ e٣")
        for _ in 0..<5000 {
            let text = String((0..<Int.random(in: 0...7, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "0" })
            let expected = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            #expect(CSVColumnType.isNumber(text, commaAllowed: commaAllowed) == expected, "\(text)")
        }
    }
}

@Suite("The csv target's sftp block")
struct SFTPBlockTests {
    static func compile(file: String, sftp: String?) -> (MappingFile?, [MappingDiagnostic]) {
        let text = """
            {"name": "m", "when": {"event": "candidate/new"},
             "csv": {"file": "\(file)", \(sftp.map { "\"sftp\": \($0)," } ?? "") "columns": [{"name": "a", "value": "x"}]}}
            """
        return MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8))
    }

    static func errors(_ result: (MappingFile?, [MappingDiagnostic])) -> [String] {
        result.1.filter { $0.severity == .error }.map { "\($0.pointer): \($0.message)" }
    }

    @Test func aPinnedLoginCompiles() throws {
        let result = Self.compile(
            file: "sftp://files.example.com:2222/in/hires-{{ period.date }}.csv",
            sftp:
                #"{"user": "${SFTP_USER}", "private_key_file": "${SECRETS_DIR}/sftp_key", "host_key_sha256": "${SFTP_HOST_KEY}", "file_mode": "0600"}"#
        )
        #expect(Self.errors(result).isEmpty, "\(result.1)")
        guard case .csv(let csv)? = result.0?.target, let sftp = csv.sftp else {
            Issue.record("an sftp csv target")
            return
        }
        #expect(sftp.user == "${SFTP_USER}" && sftp.fileMode == 0o600 && sftp.knownHosts == nil)
        #expect(result.0?.requiredVariables.contains("SFTP_HOST_KEY") == true, "check reports unset credentials")
    }

    @Test func mistakesStopTheCompilerAtTheirPath() {
        let noBlock = Self.errors(Self.compile(file: "sftp://h/in/x.csv", sftp: nil))
        #expect(noBlock.contains { $0.hasPrefix("/csv/file: an sftp:// \"file\" needs an \"sftp\" block") }, "\(noBlock)")
        let unpinned = Self.errors(Self.compile(file: "sftp://h/in/x.csv", sftp: #"{"user": "u", "private_key_file": "/k"}"#))
        #expect(unpinned.contains { $0.hasPrefix("/csv/sftp: the server's host key must be pinned") }, "\(unpinned)")
        let both = Self.errors(
            Self.compile(file: "sftp://h/in/x.csv", sftp: #"{"user": "u", "private_key_file": "/k", "host_key_sha256": "x", "known_hosts": "/kh"}"#))
        #expect(both.contains { $0.hasPrefix("/csv/sftp: the server's host key must be pinned") }, "\(both)")
        let fromEvent = Self.errors(
            Self.compile(file: "sftp://h/in/x.csv", sftp: #"{"user": "{{ candidate.email }}", "private_key_file": "/k", "known_hosts": "/kh"}"#))
        #expect(fromEvent.contains { $0.hasPrefix("/csv/sftp/user: \"user\" may use ${VARIABLES} only") }, "\(fromEvent)")
        let local = Self.errors(Self.compile(file: "/exports/x.csv", sftp: #"{"user": "u", "private_key_file": "/k", "known_hosts": "/kh"}"#))
        #expect(local.contains { $0.hasPrefix("/csv/sftp: \"sftp\" applies only when") }, "\(local)")
        let mode = Self.errors(
            Self.compile(file: "sftp://h/x.csv", sftp: #"{"user": "u", "private_key_file": "/k", "known_hosts": "/kh", "file_mode": "rw"}"#))
        #expect(mode.contains { $0.hasPrefix("/csv/sftp/file_mode:") }, "\(mode)")
    }
}

@Suite("The fixed_width format")
struct FixedWidthFormatTests {
    static func errors(_ csv: String) -> [String] {
        let text = #"{"name": "m", "when": {"event": "candidate/new"}, "csv": {"file": "/x/{{ period.date }}.txt", \#(csv)}}"#
        return MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).1.filter { $0.severity == .error }.map {
            "\($0.pointer): \($0.message)"
        }
    }

    @Test func aLayoutCompiles() throws {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"},
             "csv": {"file": "/x/{{ period.date }}.txt", "format": "fixed_width", "line_ending": "none", "header": true,
                     "columns": [{"name": "n", "value": "{{ candidate.id }}", "width": 6, "type": "number", "pad": "0"},
                                 {"name": "s", "value": "x", "width": 3, "align": "right", "overflow": "cut"}]}}
            """#
        let mapping = try #require(MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).0)
        guard case .csv(let csv) = mapping.target else {
            Issue.record("a csv target")
            return
        }
        #expect(csv.format == .fixedWidth && csv.header && csv.lineEnding == "none")
        #expect(
            csv.columns.map(\.fixed) == [
                FixedWidthField(width: 6, alignRight: true, pad: 0x30), FixedWidthField(width: 3, alignRight: true, cut: true),
            ])
    }

    @Test func mistakesNameTheirPath() {
        let missingWidth = Self.errors(#""format": "fixed_width", "columns": [{"name": "a", "value": "x"}]"#)
        #expect(missingWidth.contains("/csv/columns/0: a fixed_width column needs a \"width\""), "\(missingWidth)")
        let widthInCSV = Self.errors(#""columns": [{"name": "a", "value": "x", "width": 3}]"#)
        #expect(widthInCSV.contains { $0.hasPrefix("/csv/columns/0/width: \"width\" applies to fixed_width files") }, "\(widthInCSV)")
        let delimiter = Self.errors(#""format": "fixed_width", "delimiter": ";", "columns": [{"name": "a", "value": "x", "width": 3}]"#)
        #expect(delimiter.contains("/csv/delimiter: \"delimiter\" does not apply to fixed_width files"), "\(delimiter)")
        let pad = Self.errors(#""format": "fixed_width", "columns": [{"name": "a", "value": "x", "width": 3, "pad": "ab"}]"#)
        #expect(pad.contains { $0.hasPrefix("/csv/columns/0/pad:") }, "\(pad)")
        let guardSet = Self.errors(#""format": "fixed_width", "columns": [{"name": "a", "value": "x", "width": 3, "formula_guard": false}]"#)
        #expect(guardSet.contains { $0.hasPrefix("/csv/columns/0/formula_guard:") }, "\(guardSet)")
        let none = Self.errors(#""line_ending": "none", "columns": [{"name": "a", "value": "x"}]"#)
        #expect(none.contains { $0.hasPrefix("/csv/line_ending:") }, "a CSV file needs record ends: \(none)")
    }
}

@Suite("Fixed-width rules that keep amounts intact")
struct FixedWidthSafetyTests {
    static func errors(_ columns: String, header: Bool = false) -> [String] {
        let text = """
            {"name": "m", "when": {"event": "candidate/new"}, "csv": {"file": "/x/{{ period.date }}.txt", "format": "fixed_width",
             "header": \(header), "columns": \(columns)}}
            """
        return MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).1.filter { $0.severity == .error }.map {
            "\($0.pointer): \($0.message)"
        }
    }

    @Test func numbersAreNeverCutOrZeroPaddedOnTheRight() {
        let cut = Self.errors(#"[{"name": "a", "value": "x", "type": "number", "width": 3, "overflow": "cut"}]"#)
        #expect(cut.contains { $0.hasPrefix("/csv/columns/0/overflow: a number column cannot be cut") }, "\(cut)")
        let zeros = Self.errors(#"[{"name": "a", "value": "x", "width": 3, "pad": "0"}]"#)
        #expect(zeros.contains { $0.hasPrefix("/csv/columns/0/pad: \"pad\": \"0\" needs \"align\": \"right\"") }, "\(zeros)")
        #expect(Self.errors(#"[{"name": "a", "value": "x", "type": "number", "width": 3, "pad": "0"}]"#).isEmpty, "numbers align right by default")
    }

    @Test func aHeaderLongerThanItsColumnIsRefused() {
        let long = Self.errors(#"[{"name": "Anställningsnummer", "value": "x", "width": 6}]"#, header: true)
        #expect(long.contains { $0.hasPrefix("/csv/columns/0/name: the header") }, "\(long)")
        #expect(Self.errors(#"[{"name": "Anställningsnummer", "value": "x", "width": 6}]"#).isEmpty, "no header, no problem")
    }

    @Test func aPassphraseIsAVariableNeverALiteral() {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"}, "csv": {"file": "sftp://h/x/{{ period.date }}.csv",
             "sftp": {"user": "u", "private_key_file": "/k", "passphrase": "hunter2", "known_hosts": "/kh"}, "columns": [{"name": "a", "value": "x"}]}}
            """#
        let diagnostics = MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).1
        #expect(diagnostics.contains { $0.pointer == "/csv/sftp/passphrase" && $0.severity == .error })
        #expect(!diagnostics.contains { $0.message.contains("hunter2") }, "the error does not quote it")
    }
}

@Suite("File names that two periods would share")
struct PeriodFileNameTests {
    static func warnings(file: String, schedule: String) -> [String] {
        let text = """
            {"name": "m", "when": {"event": "candidate/new"}, "csv": {"file": "\(file)", "schedule": "\(schedule)", "columns": [{"name": "a", "value": "x"}]}}
            """
        return MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).1.filter { $0.severity == .warning }.map(\.message)
    }

    @Test func aScheduleThatFiresTwiceADayNeedsMoreThanTheDateInTheName() {
        #expect(Self.warnings(file: "/x/h-{{ period.date }}.csv", schedule: "0 */6 * * *").contains { $0.contains("two periods of a day") })
        #expect(Self.warnings(file: "/x/h-{{ period.date }}.csv", schedule: "*/15 8 * * *").contains { $0.contains("two periods of a day") })
        #expect(Self.warnings(file: "/x/h-{{ period.start }}.csv", schedule: "0 */6 * * *").isEmpty)
        #expect(Self.warnings(file: "/x/h-{{ period.date }}.csv", schedule: "0 2 * * *").isEmpty, "once a day: the date is unique")
    }
}
