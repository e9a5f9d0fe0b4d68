import Testing

@testable import JSON

@Suite("JSONFieldScanner")
struct JSONFieldScannerTests {
    let query = JSONFieldQuery([
        ["event_type"], ["action"], ["data", "company", "id"], ["data", "candidate", "id"],
        ["data", "candidate", "internal_id"], ["data", "missing"], ["data", "company"],
    ])

    @Test func extractsTheQueriedFields() throws {
        let result = try JSONFieldScanner(query).scan(try Fixtures.bytes("candidate-new"))
        let full = try JSONParser.parse(try Fixtures.bytes("candidate-new"))
        #expect(result.values[0] == "candidate")
        #expect(result.values[1] == "new")
        #expect(result.values[2] == "04b9171e-6d74-451f-a8e3-9bc3cf2b2954")
        #expect(result.values[3] == "aed6532d-2438-4e33-b15b-1f1a20ba1c16")
        #expect(result.values[4]?.numberValue?.lexeme == "5903582")
        #expect(result.values[5] == nil)
        #expect(result.values[6] == full[path: ["data", "company"]])
    }

    @Test func agreesWithTheFullParserOnEveryExample() throws {
        for name in Fixtures.examples + ["candidate-new-doc-trailing-commas"] {
            let bytes = try Fixtures.bytes(name)
            let full = try JSONParser.parseDocument(bytes)
            let scanned = try JSONFieldScanner(query).scan(bytes)
            for (index, path) in query.paths.enumerated() {
                #expect(scanned.values[index] == full.value[path: path], "\(name) \(path)")
            }
            #expect(scanned.usedTrailingCommas == full.usedTrailingCommas)
        }
    }

    @Test func kindPathsAgreeWithTheFullParserWithoutBuildingValues() throws {
        let kindPaths: [[String]] = [
            ["data"], ["data", "candidate"], ["data", "candidate", "id"], ["data", "candidate", "internal_id"],
            ["data", "candidate", "first_name"], ["data", "missing"], ["event_type"], ["data", "company"],
            ["data", "job", "locations"], ["nothing", "here"],
        ]
        // Mixed with value paths, one of which ("data.company") sits above a kind path.
        let mixed = JSONFieldQuery([["event_type"], ["data", "company"]], kindsOf: kindPaths)
        for name in Fixtures.examples + ["candidate-new-doc-trailing-commas"] {
            let bytes = try Fixtures.bytes(name)
            let full = try JSONParser.parse(bytes)
            let kindsOnly = try JSONFieldScanner(JSONFieldQuery([], kindsOf: kindPaths)).scan(bytes)
            let both = try JSONFieldScanner(mixed).scan(bytes)
            for (index, path) in kindPaths.enumerated() {
                #expect(kindsOnly.kinds[index] == full[path: path]?.kind, "\(name) \(path)")
                #expect(both.kinds[index] == full[path: path]?.kind, "\(name) \(path)")
            }
            #expect(both.values[1] == full[path: ["data", "company"]])
        }
    }

    @Test func everyKindIsToldByItsFirstByte() throws {
        let text = #"{"a":null,"b":true,"c":false,"d":-1.5e3,"e":"s","f":[],"g":{}}"#
        let paths = ["a", "b", "c", "d", "e", "f", "g", "h"].map { [$0] }
        let result = try JSONFieldScanner(JSONFieldQuery([], kindsOf: paths)).scan(Array(text.utf8))
        #expect(result.kinds == [.null, .bool, .bool, .number, .string, .array, .object, nil])
        // A kind target still validates what it skips.
        #expect(throws: JSONError.self) {
            try JSONFieldScanner(JSONFieldQuery([], kindsOf: [["a"]])).scan(Array(#"{"a":{"x":tru}}"#.utf8))
        }
    }

    @Test func escapedKeysMatch() throws {
        let result = try JSONFieldScanner(JSONFieldQuery([["event_type"]])).scan(Array(#"{"event\u005ftype":"job"}"#.utf8))
        #expect(result.values[0] == "job")
    }

    @Test func validatesTheSkippedParts() {
        let bad: [String] = [
            #"{"event_type":"job","data":{"x":[1,2,}]}}"#,  // double-problem: trailing comma then '}' in array
            #"{"event_type":"job","data":{"x":"\uD800"}}"#,
            #"{"event_type":"job","data":{"x":1,"x":2}}"#,
            #"{"event_type":"job"} x"#,
            #"{"event_type":"job","data":{"x":01}}"#,
        ]
        for text in bad {
            #expect(throws: JSONError.self, "\(text)") { try JSONFieldScanner(query).scan(Array(text.utf8)) }
        }
    }

    @Test func skippedErrorsCarryTheirPointer() {
        do {
            _ = try JSONFieldScanner(query).scan(Array(#"{"data":{"job":{"locations":[{"city":tru}]}}}"#.utf8))
            Issue.record("accepted")
        } catch {
            #expect(error.pointer.description == "/data/job/locations/0/city")
        }
    }

    @Test func depthLimitAppliesWhileSkipping() {
        let bomb = "{\"x\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(throws: JSONError.self) { try JSONFieldScanner(query).scan(Array(bomb.utf8)) }
    }
}
