import TestSupport
import Testing

@testable import JSON

/// Randomised round trips and fuzzing with a fixed seed per case, so a failure
/// is reproducible from the printed seed.
@Suite("JSON properties")
struct JSONPropertyTests {
    static func randomString(_ rng: inout SeededGenerator) -> String {
        let pool: [Unicode.Scalar] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "é", "Å", "€", "😀", "𝄞", "\u{2028}", "\u{FFFF}", "\u{10FFFF}",
        ]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            s.append(pool.randomElement(using: &rng) ?? "a")
        }
        return String(s)
    }

    static func randomNumber(_ rng: inout SeededGenerator) -> JSONNumber {
        let forms = ["0", "-0", "7", "-12", "3.25", "1e9", "-2.5E-3", "12345678901234567890123", "0.000", "9007199254740993"]
        return JSONNumber(lexeme: forms.randomElement(using: &rng) ?? "0") ?? JSONNumber(0)
    }

    static func randomValue(_ rng: inout SeededGenerator, depth: Int) -> JSONValue {
        let roll = Int.random(in: 0..<(depth > 5 ? 4 : 6), using: &rng)
        switch roll {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(randomNumber(&rng))
        case 3: return .string(randomString(&rng))
        case 4: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                object[randomString(&rng)] = randomValue(&rng, depth: depth + 1)
            }
            return .object(object)
        }
    }

    @Test("parse(write(v)) == v", arguments: 0..<200)
    func roundTrip(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed))
        let value = Self.randomValue(&rng, depth: 0)
        let bytes = JSONWriter.bytes(value)
        #expect(try JSONParser.parse(bytes, options: .strict) == value, "seed \(seed)")
        // Writing is canonical: a second round gives identical bytes.
        #expect(JSONWriter.bytes(try JSONParser.parse(bytes)) == bytes, "seed \(seed)")
    }

    @Test("whitespace and trailing commas never change the value", arguments: 0..<100)
    func formattingIsIrrelevant(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 10_000)
        let value = Self.randomValue(&rng, depth: 0)
        let compact = JSONWriter.string(value)
        // Insert whitespace after structural characters outside strings.
        var spaced = ""
        var inString = false
        var escaped = false
        for ch in compact {
            spaced.append(ch)
            if inString {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false }
            } else if ch == "\"" {
                inString = true
            } else if "[{,:".contains(ch) {
                spaced.append([" ", "\n", "\t", "\r\n"].randomElement(using: &rng) ?? " ")
            }
        }
        #expect(try JSONParser.parse(spaced, options: .strict) == value, "seed \(seed)")
    }

    @Test("mutated inputs never crash and agree between parser and scanner", arguments: 0..<300)
    func fuzzMutations(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 77_000)
        let base = try Fixtures.bytes(Fixtures.examples[seed % Fixtures.examples.count])
        var bytes = base
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes[position] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.remove(at: position)
            case 2:
                bytes.insert(
                    [UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "\""), 0xC3, UInt8(ascii: "\\")].randomElement(using: &rng) ?? 0, at: position
                )
            default: bytes = Array(bytes[..<position])
            }
        }
        let parsed = Result { () throws(JSONError) in try JSONParser.parseDocument(bytes, options: .payload) }
        let scanned = Result { () throws(JSONError) in try JSONParser.validate(bytes, options: .payload) }
        switch (parsed, scanned) {
        case (.success(let document), .success(let scan)):
            #expect(document.usedTrailingCommas == scan.usedTrailingCommas, "seed \(seed)")
        case (.failure(let a), .failure(let b)):
            #expect(a == b, "seed \(seed): parser and scanner disagree on the error")
        default:
            Issue.record("seed \(seed): parser and scanner disagree on validity")
        }
    }
}
