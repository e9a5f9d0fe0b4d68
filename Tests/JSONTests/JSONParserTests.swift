import Testing

@testable import JSON

@Suite("JSONParser")
struct JSONParserTests {
    // MARK: RFC 8259 conformance

    /// Texts every conforming parser must accept (after nst/JSONTestSuite's y_ cases).
    static let accepted: [String] = [
        "[]", "{}", "0", "-0", "1", "-1", "1.5", "-0.0e+1", "1E3", "1e-3", "123e65", "0.000001",
        "\"\"", "\"a\"", "true", "false", "null", " [ 1 , 2 ] ", "\t\n\r [\n]\n",
        "[[[[[]]]]]", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "\"\\u0000\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\uD834\\uDD1E\"", "\"\\ud834\\udd1e\"", "\"é\"", "\"𝄞\"", "\"\u{7F}\"", "[\"\u{2028}\u{2029}\"]",
        "{\"\":0}", "{\"a\":1,\"A\":2}", "[1e1,0.1e1,-1E-1]", "\"\\u20AC\"", "[-123456789012345678901234567890]",
    ]

    /// Texts a conforming parser must refuse (n_ cases), in both modes.
    static let rejected: [String] = [
        "", " ", "[", "]", "{", "}", "[1", "{\"a\":1", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}",
        "['a']", "[01]", "[-01]", "[1.]", "[.1]", "[1e]", "[1e+]", "[+1]", "[-]", "[0x10]", "[NaN]", "[Infinity]",
        "[-Infinity]", "[tru]", "[nul]", "[True]", "[1,,2]", "[,1]", "[,]", "{,}", "{\"a\":1,,}", "//x\n[]",
        "/*x*/[]", "[1]x", "[1][2]", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\uD800\"", "\"\\uDC00\"",
        "\"\\uD800\\u0041\"", "\"\\uD800x\"", "\"a\tb\"", "\"a\nb\"", "[\u{0C}]", "{\"a\":1 \"b\":2}",
        "\u{00A0}[]", "[1,]extra", "{\"a\":1}}", "[\"a\",]]",
    ]

    @Test("accepts RFC 8259 texts", arguments: accepted)
    func acceptsConformingTexts(_ text: String) throws {
        _ = try JSONParser.parse(text, options: .strict)
        _ = try JSONParser.parse(text, options: .payload)
    }

    @Test("rejects non-JSON texts", arguments: rejected)
    func rejectsNonConformingTexts(_ text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text, options: .strict) }
        #expect(throws: JSONError.self) { try JSONParser.parse(text, options: .payload) }
    }

    @Test(
        "invalid UTF-8 is rejected with the offending byte's position",
        arguments: [
            [0x22, 0x80, 0x22],  // lone continuation byte
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong 3-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8 encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
            [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
            [0x22, 0xFF, 0x22],
        ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted invalid UTF-8 \(bytes)")
        } catch {
            #expect(error.kind == .invalidUTF8)
            #expect(error.position.offset == 1)
            #expect(error.position == SourcePosition(offset: 1, line: 1, column: 2))
        }
    }

    @Test func validMultiByteUTF8Survives() throws {
        let text = "{\"name\":\"Åsa Öberg 𝄞 日本\"}"
        let value = try JSONParser.parse(text)
        #expect(value["name"] == .string("Åsa Öberg 𝄞 日本"))
    }

    @Test func escapesDecode() throws {
        let value = try JSONParser.parse(#"["\u00e9\n\"\\\/", "\uD83D\uDE00", "\u0000"]"#)
        #expect(value == .array([.string("é\n\"\\/"), .string("😀"), .string("\u{0}")]))
    }

    // MARK: Numbers

    @Test func numbersKeepTheirLexeme() throws {
        let value = try JSONParser.parse("[5903582, 12345678901234567890123, -0.0, 1.50, 1E+2, 9007199254740993]")
        let lexemes = value.arrayValue?.compactMap { $0.numberValue?.lexeme }
        #expect(lexemes == ["5903582", "12345678901234567890123", "-0.0", "1.50", "1E+2", "9007199254740993"])
        #expect(value[0]?.numberValue?.int64Value == 5_903_582)
        #expect(value[0]?.numberValue?.isInteger == true)
        #expect(value[5]?.numberValue?.int64Value == 9_007_199_254_740_993)  // above 2^53, still exact
        #expect(value[1]?.numberValue?.int64Value == nil)  // too large for Int64: no silent rounding
        #expect(value[3]?.numberValue?.isInteger == false)
        #expect(JSONWriter.string(value) == "[5903582,12345678901234567890123,-0.0,1.50,1E+2,9007199254740993]")
    }

    @Test func numberLexemeValidation() {
        #expect(JSONNumber(lexeme: "12") != nil)
        #expect(JSONNumber(lexeme: "-0.5e10") != nil)
        #expect(JSONNumber(lexeme: "") == nil)
        #expect(JSONNumber(lexeme: "01") == nil)
        #expect(JSONNumber(lexeme: "1 ") == nil)
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(2.0)?.lexeme == "2")
        #expect(JSONNumber(0.25)?.lexeme == "0.25")
    }

    // MARK: Leniency

    @Test func trailingCommasOnlyInPayloadMode() throws {
        for text in ["[1,2,]", "{\"a\":1,}", "{\"a\":[{\"b\":1,},],}", "[ 1 , \n ]"] {
            let document = try JSONParser.parseDocument(Array(text.utf8), options: .payload)
            #expect(document.usedTrailingCommas)
            #expect(throws: JSONError.self) { try JSONParser.parse(text, options: .strict) }
        }
        let clean = try JSONParser.parseDocument(Array("[1,2]".utf8), options: .payload)
        #expect(!clean.usedTrailingCommas)
    }

    @Test func trailingCommaErrorPointsAtTheComma() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": [1, 2,\n  ]\n}", options: .strict)
            Issue.record("accepted")
        } catch {
            #expect(error.kind == .trailingComma)
            #expect(error.position.line == 2)
            #expect(error.position.column == 13)
            #expect(error.pointer.description == "/a/1")
        }
    }

    @Test func onlyOneTrailingCommaIsLenient() {
        #expect(throws: JSONError.self) { try JSONParser.parse("[1,,]") }
        #expect(throws: JSONError.self) { try JSONParser.parse("[,]") }
        #expect(throws: JSONError.self) { try JSONParser.parse("{,}") }
    }

    // MARK: Limits

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONParser.parse(ok)
        let bomb = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        do {
            _ = try JSONParser.parse(bomb)
            Issue.record("accepted a depth bomb")
        } catch {
            #expect(error.kind == .depthLimitExceeded(limit: 64))
            #expect(error.position.column == 65)
        }
        // A huge bomb fails fast on the limit, not on the stack.
        let huge = String(repeating: "{\"a\":", count: 200_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(huge) }
    }

    @Test func sizeLimit() {
        let options = JSONParseOptions(allowTrailingCommas: true, maxBytes: 10)
        #expect(throws: JSONError.self) { try JSONParser.parse("[1,2,3,4,5,6]", options: options) }
        do {
            _ = try JSONParser.parse("[1,2,3,4,5,6]", options: options)
        } catch {
            #expect(error.kind == .sizeLimitExceeded(limit: 10))
        }
    }

    @Test func byteOrderMarkIsRefused() {
        do {
            _ = try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
            Issue.record("accepted")
        } catch {
            #expect(error.kind == .byteOrderMark)
        }
    }

    // MARK: Objects

    @Test func duplicateKeysAreRejected() {
        for text in ["{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"x\":{\"id\":1,\"id\":1}}"] {
            do {
                _ = try JSONParser.parse(text)
                Issue.record("accepted \(text)")
            } catch {
                if case .duplicateKey = error.kind {} else { Issue.record("wrong error \(error)") }
            }
        }
        // Many keys: hashed check, still exact.
        var members = (0..<100).map { "\"k\($0)\":\($0)" }
        #expect(throws: Never.self) { try JSONParser.parse("{" + members.joined(separator: ",") + "}") }
        members.append("\"k42\":0")
        #expect(throws: JSONError.self) { try JSONParser.parse("{" + members.joined(separator: ",") + "}") }
    }

    @Test func memberOrderIsKept() throws {
        let value = try JSONParser.parse("{\"z\":1,\"a\":2,\"m\":3}")
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(JSONWriter.string(value) == "{\"z\":1,\"a\":2,\"m\":3}")
    }

    // MARK: Error positions

    @Test func errorPositionsCountScalarsNotBytes() {
        do {
            _ = try JSONParser.parse("{\"namn\": \"Åsa\", \"x\": tru}")
            Issue.record("accepted")
        } catch {
            #expect(error.position.line == 1)
            #expect(error.position.column == 25)  // "Å" is two bytes, one column; the mismatch is at "}"
            #expect(error.pointer.description == "/x")
            #expect(error.description.hasPrefix("1:25: unexpected"))
        }
    }

    @Test func errorMessagesDoNotQuoteStringContent() {
        do {
            _ = try JSONParser.parse("{\"iban\": \"SE6281323143611896423859\n\"}")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("SE62"))
            #expect(error.kind == .controlCharacterInString(0x0A))
            #expect(error.pointer.description == "/iban")
        }
    }

    @Test func errorInsideArraysNamesTheIndex() {
        do {
            _ = try JSONParser.parse("{\"data\":{\"answers\":[{},{\"id\":01}]}}")
            Issue.record("accepted")
        } catch {
            #expect(error.pointer.description == "/data/answers/1/id")
            #expect(error.kind == .invalidNumber(expected: "no leading zero"))
        }
    }

    // MARK: Documented payloads

    @Test("the four documented examples parse", arguments: Fixtures.examples)
    func documentedExamplesParse(_ name: String) throws {
        let bytes = try Fixtures.bytes(name)
        let document = try JSONParser.parseDocument(bytes, options: .payload)
        #expect(!document.usedTrailingCommas)
        #expect(document.value["event_type"]?.stringValue != nil)
        // Lossless: re-parsing our output gives the same value.
        #expect(try JSONParser.parse(JSONWriter.bytes(document.value)) == document.value)
    }

    @Test func documentationStyleTrailingCommasAreLenientButEqual() throws {
        let sloppy = try JSONParser.parseDocument(try Fixtures.bytes("candidate-new-doc-trailing-commas"), options: .payload)
        let clean = try JSONParser.parse(try Fixtures.bytes("candidate-new"))
        #expect(sloppy.usedTrailingCommas)
        #expect(sloppy.value == clean)
        #expect(throws: JSONError.self) { try JSONParser.parse(try Fixtures.bytes("candidate-new-doc-trailing-commas"), options: .strict) }
    }

    @Test func candidateFieldsReadable() throws {
        let value = try JSONParser.parse(try Fixtures.bytes("candidate-new"))
        #expect(value[path: ["data", "candidate", "internal_id"]]?.numberValue?.int64Value == 5_903_582)
        #expect(value[path: ["data", "candidate", "status", "group"]] == 20)
        #expect(value[path: ["data", "candidate", "data", "manager"]]?[0] == "Selina Kyle")
        #expect(value[path: ["data", "candidate", "files", "cover_letter"]] == .null)
        #expect(value.value(at: JSONPointer("/data/job/departments/0/name")!) == "Engineering")
    }
}
