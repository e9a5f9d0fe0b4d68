import Testing

@testable import JSON

@Suite("JSONSourceMap")
struct JSONSourceMapTests {
    let text = """
        {
          "name": "payroll-new-hire",
          "rest": {
            "body": {
              "firstName": "{{ candidate.first_name | trim }}",
              "quoted": "\\"Åsa\\" {{ candidate.x | nope }}",
              "pair": "\\uD83D\\uDE00{{ a }}"
            },
            "success": [200, 201]
          }
        }
        """

    @Test func recordsValueAndKeyPositions() throws {
        let document = try JSONParser.parseDocument(Array(text.utf8), options: .mappingFile)
        let map = try #require(document.sourceMap)
        #expect(map.position(of: .root)?.description == "1:1")
        #expect(map.position(of: JSONPointer("/name")!)?.description == "2:11")
        #expect(map.keyPosition(of: JSONPointer("/name")!)?.description == "2:3")
        #expect(map.position(of: JSONPointer("/rest/body/firstName")!)?.description == "5:20")
        #expect(map.position(of: JSONPointer("/rest/success/1")!)?.description == "9:22")
    }

    @Test func mapsScalarOffsetsThroughEscapes() throws {
        let document = try JSONParser.parseDocument(Array(text.utf8), options: .mappingFile)
        let map = try #require(document.sourceMap)
        let pointer = JSONPointer("/rest/body/quoted")!
        let decoded = try #require(document.value.value(at: pointer)?.stringValue)
        // Find "nope" in the decoded string and map its offset back to the file.
        let scalars = Array(decoded.unicodeScalars)
        let index = try #require((0..<scalars.count).first { String(String.UnicodeScalarView(scalars[$0...].prefix(4))) == "nope" })
        let position = try #require(map.position(ofScalar: index, inStringAt: pointer))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let line = Array(lines[position.line - 1].unicodeScalars)
        #expect(String(String.UnicodeScalarView(line[(position.column - 1)...].prefix(4))) == "nope")

        let pair = JSONPointer("/rest/body/pair")!
        // Scalar 1 comes after the 12-byte surrogate pair escape.
        let afterPair = try #require(map.position(ofScalar: 1, inStringAt: pair))
        let start = try #require(map.position(of: pair))
        #expect(afterPair.column == start.column + 1 + 12)
    }

    @Test func pointersEscapeTildeAndSlash() {
        let pointer = JSONPointer(tokens: ["a/b", "c~d", "0"])
        #expect(pointer.description == "/a~1b/c~0d/0")
        #expect(JSONPointer(pointer.description) == pointer)
        #expect(JSONPointer("no-slash") == nil)
    }
}
