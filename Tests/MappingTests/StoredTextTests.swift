import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("Stored request text")
struct StoredTextTests {
    let variables = VariableSource(environment: ["TOKEN": "s3cret", "BASE": "https://hr.example"])

    func fill(_ text: String) -> (String, [String]) {
        var missing: [String] = []
        let out = variables.fill(text, mask: false, missing: &missing)
        return (out, missing)
    }

    @Test func escapingDoublesEveryDollarAndFillingUndoesIt() {
        #expect(StoredText.escape("no dollars") == "no dollars")
        #expect(StoredText.escape("a$b${TOKEN}") == "a$$b$${TOKEN}")
        #expect(fill(StoredText.escape("a$b${TOKEN}")).0 == "a$b${TOKEN}")
        #expect(StoredText.unescape("$$5 ${TOKEN}") == "$5 ${TOKEN}")
    }

    @Test func placeholdersAreFilledDefaultsUsedAndMissingNamesCollected() {
        #expect(fill("${BASE}/v1?t=${TOKEN}").0 == "https://hr.example/v1?t=s3cret")
        #expect(fill("${UNSET:-${BASE}}/x").0 == "https://hr.example/x")
        let (out, missing) = fill("${NOPE}/${NOPE}/${ALSO}")
        #expect(out == "${NOPE}/${NOPE}/${ALSO}")
        #expect(missing == ["NOPE", "ALSO"])
        #expect(fill("costs $5, ${ unclosed").0 == "costs $5, ${ unclosed")
        var masked: [String] = []
        #expect(variables.fill("Bearer ${TOKEN}", mask: true, missing: &masked) == "Bearer ********")
    }

    @Test func jsonValuesAreEscapedAndFilledInKeysAndStrings() {
        let stored = StoredText.escape(["${TOKEN}": ["$x", 1, true]] as JSONValue)
        #expect(stored == ["$${TOKEN}": ["$$x", 1, true]])
        var missing: [String] = []
        #expect(variables.fill(stored, mask: false, missing: &missing) == ["${TOKEN}": ["$x", 1, true]])
        #expect(variables.fill(["k": "${TOKEN}"] as JSONValue, mask: false, missing: &missing) == ["k": "s3cret"])
    }

    /// Event data is escaped when rendered: whatever it holds, filling it gives
    /// back exactly that text and never a variable's value.
    @Test("escaped data never fills a variable", arguments: 0..<300)
    func escapedDataIsNeverFilled(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 41)
        let alphabet: [Character] = ["$", "{", "}", ":", "-", "T", "O", "K", "E", "N", "B", "A", "S", " ", "é", "$"]
        let data = String((0..<Int.random(in: 0...24, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "$" })
        let (out, missing) = fill(StoredText.escape(data))
        #expect(out == data, "seed \(seed)")
        #expect(missing.isEmpty)
        #expect(!out.contains("s3cret"))
    }
}
