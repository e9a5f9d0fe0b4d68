import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("Expression language")
struct ExpressionTests {
    let data: JSONValue = try! JSONParser.parse(
        #"""
        {"candidate": {"id": "c1", "first_name": "  åsa  ", "status": {"group": 20}, "data": {"manager": ["Selina Kyle", "Bruce"], "iban": "se62 8000 0000 0000 0000 0000 01"},
                       "answers": [{"answer_type": "text", "text": "hi"}, {"answer_type": "file", "text": "https://x/1"}, {"answer_type": "file", "text": "https://x/2"}]},
         "job": {"locations": [{"location_json": {"city": "Gotham"}}, {"location_json": {"city": "Metropolis"}}], "departments": []},
         "big": 12345678901234567890}
        """#)  // safe: a literal fixture that is valid JSON

    func scope() -> EvaluationScope {
        EvaluationScope(
            data: data, event: ["type": "candidate"], now: "2026-03-29T01:30:00.000Z",
            lookups: ["cc": JSONObject([.init(key: "Engineering", value: "CC-100")])])
    }

    func eval(_ text: String) throws -> JSONValue {
        try Template.parse(text).render(in: scope())
    }

    /// The single-value walk of a path gives what the general (fanned-out) walk
    /// gives, on random paths with fields, indexes, negative indexes, wildcards,
    /// computed keys and missing parts, including the errors a computed key throws.
    @Test func singleValuePathWalkEqualsTheGeneralWalk() throws {
        let roots = ["candidate", "job", "big", "data", "nope", "event"]
        let segments = [
            ".id", ".first_name", ".status", ".group", ".data", ".manager", ".answers", ".text", ".answer_type", ".locations",
            ".location_json", ".city", ".departments", "[0]", "[1]", "[-1]", "[5]", "[*]", ".missing", "['status']",
            "[candidate.id]", "[candidate.missing | required]", "[candidate.status.group]",
        ]
        var generator = SeededGenerator(seed: 0x5A7E)
        let scope = scope()
        func outcome(_ body: () throws(EvaluationError) -> JSONValue?) -> String {
            do { return "\(String(describing: try body()))" } catch { return "error: \(error)" }
        }
        var checked = 0
        for _ in 0..<3000 {
            let text =
                (roots.randomElement(using: &generator) ?? "candidate")
                + (0..<Int.random(in: 0...5, using: &generator)).map { _ in segments.randomElement(using: &generator) ?? "" }.joined()
            guard let template = try? Template.parse("{{ \(text) }}"), case .expression(.path(let path), _)? = template.parts.first else {
                continue
            }
            checked += 1
            let general = outcome { () throws(EvaluationError) in
                guard let root = scope.root(path.root) else { return nil }
                return try Evaluator.resolveRest(path.segments[...], from: [root], in: scope)
            }
            #expect(outcome { () throws(EvaluationError) in try Evaluator.resolve(path, in: scope) } == general, "\(text)")
        }
        #expect(checked > 2000)
    }

    @Test func singleExpressionsKeepTheirType() throws {
        #expect(try eval("{{ candidate.status.group }}") == 20)
        #expect(try eval("{{ big }}") == .number(JSONNumber(lexeme: "12345678901234567890")!))  // safe: valid lexeme
        #expect(try eval("{{ candidate.data.manager }}") == ["Selina Kyle", "Bruce"])
        #expect(try eval("{{ candidate.missing }}") == .null)
        #expect(try eval("group {{ candidate.status.group }}") == "group 20")
        #expect(try eval("{{ candidate.status.group == 20 }}") == true)
    }

    @Test func pathsIndexesAndWildcards() throws {
        #expect(try eval("{{ candidate.data.manager[0] }}") == "Selina Kyle")
        #expect(try eval("{{ candidate.data.manager[-1] }}") == "Bruce")
        #expect(try eval("{{ job.locations[*].location_json.city | join: ', ' }}") == "Gotham, Metropolis")
        #expect(try eval("{{ job.departments[0].name | default: 'Unassigned' }}") == "Unassigned")
        #expect(try eval("{{ candidate['first_name'] | trim }}") == "åsa")
    }

    @Test func logicComparisonsAndConditionals() throws {
        #expect(try eval("{{ candidate.status.group == 20 and not (candidate.id == 'x') }}") == true)
        #expect(try eval("{{ candidate.status.group in [19, 20] }}") == true)
        #expect(try eval("{{ 'Bruce' in candidate.data.manager }}") == true)
        #expect(try eval("{{ candidate.status.group >= 21 or candidate.missing }}") == false)
        #expect(try eval("{{ candidate.status.group == 20 ? 'hired' : 'other' }}") == "hired")
        #expect(try eval("{{ 20.0 == candidate.status.group }}") == true)
        #expect(try eval("{{ candidate.missing == null }}") == true)
    }

    @Test func filtersOnTheSampleData() throws {
        #expect(try eval("{{ candidate.first_name | trim | title }}") == "Åsa")
        #expect(try eval("{{ candidate.first_name | trim | upper }}") == "ÅSA")
        #expect(try eval("{{ 'se62 8132 3143 6118 9642 3859' | iban }}") == "SE6281323143611896423859")
        #expect(throws: EvaluationError.self) { try eval("{{ candidate.data.iban | iban }}") }
        #expect(try eval("{{ candidate.answers | where: 'answer_type', 'file' | map: 'text' }}") == ["https://x/1", "https://x/2"])
        #expect(try eval("{{ candidate.data.manager | first }}") == "Selina Kyle")
        #expect(try eval("{{ candidate.data.manager | length }}") == 2)
        #expect(try eval("{{ 'Engineering' | lookup: 'cc' }}") == "CC-100")
        #expect(try eval("{{ 'Sales' | lookup: 'cc', 'none' }}") == "none")
        #expect(try eval("{{ 'a-b-c' | split: '-' | last }}") == "c")
        #expect(try eval("{{ 'abcdef' | slice: 1, 3 }}") == "bcd")
        #expect(try eval("{{ 'abcdef' | slice: -2 }}") == "ef")
        #expect(try eval("{{ 'x' | concat: 'y', 1 }}") == "xy1")
        #expect(try eval("{{ 'hello world' | replace: 'o', '0' }}") == "hell0 w0rld")
        #expect(try eval("{{ 'AB-123' | regex_replace: '([A-Z]+)-(\\\\d+)', '$2/$1' }}") == "123/AB")
        #expect(try eval("{{ 'AB-123' | matches: '^[A-Z]{2}-' }}") == true)
        #expect(try eval("{{ 'abc' | sha256 }}") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try eval("{{ candidate.status | json }}") == #"{"group":20}"#)
        #expect(try eval("{{ ['a', null, '', 'b'] | compact }}") == ["a", "b"])
        #expect(try eval("{{ now }}") == "2026-03-29T01:30:00.000Z")
    }

    @Test func requiredNamesThePathNotTheValue() throws {
        do {
            _ = try eval("{{ candidate.data.startingdate | required }}")
            Issue.record("required accepted a missing value")
        } catch let error as EvaluationError {
            #expect(error.message == "required: 'candidate.data.startingdate' is missing or empty")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// `trim`'s two-byte shortcut gives what the character rule gives, for
    /// text with combining marks, Prepend marks, CR LF, NEL and no-break spaces.
    @Test func trimShortcutEqualsTheCharacterRule() {
        let pieces = [
            "a", "Z", "1", " ", "\t", "\r\n", "\n", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{2003}", "\u{301}", "\u{600}", "å", "ł",
            "\u{1C}", "-", "\u{3000}", "e\u{301}",
        ]
        var generator = SeededGenerator(seed: 0x7819)
        for _ in 0..<5000 {
            let text = (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            #expect(text.trimmingWhitespace() == text.trimmingWhitespaceByCharacter(), "\(text.debugDescription)")
        }
    }

    /// The byte path for ASCII text gives what the character rules give, error or value.
    @Test func ibanBytePathEqualsTheCharacterRules() {
        let pieces = ["SE", "se", "62", "8132", "3143", "6118", "9642", "3859", " ", "-", "\t", "\r\n", "GB82", "WEST", "!", "0", "x", "  "]
        var generator = SeededGenerator(seed: 0x1BA4)
        func outcome(_ body: () throws(FilterError) -> String) -> String {
            do { return try body() } catch { return "error: \(error)" }
        }
        for _ in 0..<3000 {
            let text = (0..<Int.random(in: 1...12, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            #expect(
                outcome { () throws(FilterError) in try IBAN.normalise(text) }
                    == outcome { () throws(FilterError) in try IBAN.normaliseCharacters(text) }, "\(text.debugDescription)")
        }
        #expect(outcome { () throws(FilterError) in try IBAN.normalise("SE62\u{00A0}8132 3143 6118 9642 3859") } == "SE6281323143611896423859")
    }

    @Test func ibanChecksAndNormalises() throws {
        #expect(try IBAN.normalise("se62 8132 3143 6118 9642 3859") == "SE6281323143611896423859")
        #expect(try IBAN.normalise("GB82 WEST 1234 5698 7654 32") == "GB82WEST12345698765432")
        #expect(throws: FilterError.self) { try IBAN.normalise("SE6281323143611896423858") }  // checksum
        #expect(throws: FilterError.self) { try IBAN.normalise("SE62") }
        #expect(throws: FilterError.self) { try IBAN.normalise("SE62!1323143611896423859") }
        do {
            _ = try IBAN.normalise("SE6281323143611896423858")
        } catch {
            #expect(!error.message.contains("8132"))
        }
    }

    /// The byte path for ASCII text gives what the character rules give, error or value.
    @Test func phoneBytePathEqualsTheCharacterRules() {
        let pieces = ["+", "00", "0", "46", "8", "123", "45", "67", " ", "-", "(", ")", ".", "/", "\t", "\r\n", "x", "9", "1234567", "+46"]
        let countries: [String?] = [nil, "46", "", "4a6", "358"]
        var generator = SeededGenerator(seed: 0x9E11)
        func outcome(_ body: () throws(FilterError) -> String) -> String {
            do { return try body() } catch { return "error: \(error)" }
        }
        for _ in 0..<4000 {
            let text = (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            let country = countries.randomElement(using: &generator) ?? nil
            #expect(
                outcome { () throws(FilterError) in try Phone.normalise(text, defaultCountry: country) }
                    == outcome { () throws(FilterError) in try Phone.normaliseCharacters(text, defaultCountry: country) },
                "\(text.debugDescription) \(country ?? "nil")")
        }
    }

    @Test func phoneNumbers() throws {
        #expect(try Phone.normalise("+46 8-123 45 67", defaultCountry: nil) == "+4681234567")
        #expect(try Phone.normalise("08-123 45 67", defaultCountry: "46") == "+4681234567")
        #expect(try Phone.normalise("0046 8 123 45 67", defaultCountry: nil) == "+4681234567")
        #expect(throws: FilterError.self) { try Phone.normalise("08-123", defaultCountry: nil) }
        #expect(throws: FilterError.self) { try Phone.normalise("call me", defaultCountry: "46") }
    }

    @Test func numbers() {
        #expect(NumberText.parse("1 234,50")?.lexeme == "1234.50")
        #expect(NumberText.parse("1.234,50")?.lexeme == "1234.50")
        #expect(NumberText.parse("1,234.50")?.lexeme == "1234.50")
        #expect(NumberText.parse("-0012")?.lexeme == "-12")
        #expect(NumberText.parse("12,")?.lexeme == "12")
        #expect(NumberText.parse("abc") == nil)
        #expect(NumberText.parse("1.2.3") == nil)
    }

    @Test func syntaxErrorsCarryOffsets() {
        let cases: [(String, Int, String)] = [
            ("{{ a | }}", 7, "expected a filter name"),
            ("x {{ a.b ", 2, "not closed"),
            ("{{ a == }}", 8, "expected a value"),
            ("{{ 'abc }}", 0, "not closed"),
            ("{{ a b }}", 5, "expected end of expression"),
            ("${bad name}", 2, "invalid variable name"),
        ]
        for (text, offset, message) in cases {
            do {
                _ = try Template.parse(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.offset == offset, "\(text): \(error)")
                #expect(error.message.contains(message), "\(text): \(error.message)")
            }
        }
    }

    @Test func variablesStayUnresolvedInRenderedOutput() throws {
        let template = try Template.parse("${PAYROLL_URL}/v1/{{ candidate.id }}?k=${KEY:-x}&d=${EXPORT_DIR:-${DATA_DIR}/exports}")
        #expect(try template.render(in: scope()) == "${PAYROLL_URL}/v1/c1?k=${KEY:-x}&d=${EXPORT_DIR:-${DATA_DIR}/exports}")
        #expect(template.variables.map(\.name) == ["PAYROLL_URL", "KEY", "EXPORT_DIR"])
        let source = VariableSource(environment: ["PAYROLL_URL": "https://p", "KEY": "s3cret"], dataDirectory: "/data")
        #expect(
            source.substitute("${PAYROLL_URL}/x?k=${KEY}&d=${EXPORT_DIR:-${DATA_DIR}/exports}", mask: true)
                == "https://p/x?k=********&d=/data/exports")
        #expect(source.substitute("${MISSING}", mask: false) == "${MISSING}")
    }

    @Test("random expressions never crash the parser", arguments: 0..<300)
    func fuzzParser(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed))
        let pieces = [
            "{{", "}}", " ", "a", ".", "[", "]", "*", "0", "-1", "'x'", "\"", "|", ":", ",", "trim", "default", "==", "and", "not", "(", ")", "?",
            "in", "${", "}", "\\", "é", "[1,", "null",
        ]
        var text = ""
        for _ in 0..<Int.random(in: 1...20, using: &rng) { text += pieces.randomElement(using: &rng) ?? "" }
        if let template = try? Template.parse(text) {
            _ = try? template.render(in: scope())
        }
    }
}

@Suite("Filters on empty input")
struct FilterEdgeTests {
    static let names = Filters.all.keys.sorted()

    @Test("missing, null and empty inputs never crash", arguments: names)
    func emptyInputs(name: String) throws {
        guard let filter = Filters.all[name] else { return }
        let arguments: [JSONValue?] = Array(["x", "y", 1, 2, 3, 4, 5, 6].prefix(filter.arity.lowerBound))
        let scope = EvaluationScope(data: [:], event: nil, now: "2026-01-01T00:00:00.000Z", lookups: ["x": JSONObject()])
        let context = FilterContext(scope: scope, input: .literal(.null))
        for input in [nil, JSONValue.null, "", [], [:], "é🙂", ["a", nil]] as [JSONValue?] {
            do {
                _ = try filter.apply(input, arguments, context)
            } catch {
                // A clear refusal is fine (required, lookup without entry…); crashing is not.
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test func nullsPassThroughTextFilters() throws {
        let scope = EvaluationScope(data: [:], event: nil, now: "")
        for text in [
            "{{ missing | trim }}", "{{ missing | upper }}", "{{ missing | date: 'yyyy' }}", "{{ missing | iban }}", "{{ missing | phone: '46' }}",
            "{{ missing | number }}",
        ] {
            #expect(try Template.parse(text).render(in: scope) == .null, "\(text)")
        }
        #expect(try Template.parse("{{ [] | join: ',' }}").render(in: scope) == "")
        #expect(try Template.parse("{{ [] | first }}").render(in: scope) == .null)
        #expect(try Template.parse("{{ 'Åsa' | length }}").render(in: scope) == 3)
        #expect(try Template.parse("{{ 'x' | now }}").render(in: EvaluationScope(data: [:], event: nil, now: "T")) == "T")
    }
}
