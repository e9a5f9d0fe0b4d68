import Testing

@testable import JSON

@Suite("JSONWriter")
struct JSONWriterTests {
    @Test func escapesWhatRFC8259Requires() {
        let value: JSONValue = .string("q\" b\\ n\n r\r t\t bs\u{8} ff\u{C} nul\u{0} us\u{1F} é 😀 /")
        #expect(JSONWriter.string(value) == #""q\" b\\ n\n r\r t\t bs\b ff\f nul\u0000 us\u001f é 😀 /""#)
    }

    @Test func writesCompactStructures() {
        let value: JSONValue = ["a": [1, true, nil, "x"], "b": [:], "c": []]
        #expect(JSONWriter.string(value) == #"{"a":[1,true,null,"x"],"b":{},"c":[]}"#)
    }

    @Test func keysAreEscapedToo() {
        let value: JSONValue = ["a\"b": 1]
        #expect(JSONWriter.string(value) == #"{"a\"b":1}"#)
    }

    @Test func objectSubscriptSetReplacesAndRemoves() {
        var object = JSONObject()
        object["a"] = 1
        object["b"] = 2
        object["a"] = 3
        #expect(object.keys == ["a", "b"])
        #expect(object["a"] == 3)
        object["a"] = nil
        #expect(object.keys == ["b"])
    }
}
