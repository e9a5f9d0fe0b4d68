import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("Swedish personal identity numbers")
struct PersonnummerTests {
    let today = Personnummer.Day(year: 2026, month: 12, day: 3)

    func normalise(_ text: String, _ form: Personnummer.Form = .twelve) throws -> String {
        try Personnummer.normalise(text, form: form, today: today)
    }

    func message(_ text: String) -> String? {
        do throws(FilterError) {
            _ = try Personnummer.normalise(text, form: .twelve, today: today)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func everyWrittenFormIsReadAndWrittenInTheAskedOne() throws {
        // Skatteverket's own example number, 811218-9876.
        for input in ["811218-9876", "8112189876", "19811218-9876", "198112189876", " 19811218 9876 "] {
            #expect(try normalise(input) == "198112189876", "\(input)")
        }
        #expect(try normalise("811218-9876", .twelveWithDash) == "19811218-9876")
        #expect(try normalise("198112189876", .ten) == "8112189876")
        #expect(try normalise("198112189876", .tenWithSign) == "811218-9876")
    }

    @Test func theCenturyOfATenDigitNumberFollowsTheSignAndToday() throws {
        // 12-12-03 born: with '-' under 100 (2012); with '+' 100 or more (1912).
        let twentyTwelve = try normalise("121203-0009")
        #expect(twentyTwelve.hasPrefix("2012"))
        #expect(try normalise("121203+0009").hasPrefix("1912"))
        // A date later this year than today is last century's.
        #expect(try normalise("261204-0002").hasPrefix("1926"))
        #expect(try normalise("19121203-0009", .tenWithSign) == "121203+0009", "100 years old today: '+'")
    }

    @Test func coordinationNumbersAddSixtyToTheDay() throws {
        // 811278: the 18th of December 1981 as a coordination number.
        #expect(try normalise("811278-9873") == "198112789873")
    }

    @Test func badNumbersAreRefusedWithoutRepeatingThem() {
        #expect(message("811218-9875") == "invalid personal identity number: check digit does not match")
        #expect(message("811318-9876") == "invalid personal identity number: not a date of birth")
        #expect(message("810230-1234")?.hasPrefix("invalid personal identity number") == true)
        #expect(message("81121-89876") == "invalid personal identity number: the sign stands before the last four digits")
        #expect(message("19811218+9876") == "invalid personal identity number: '+' belongs to the ten-digit form")
        #expect(message("8112189") == "invalid personal identity number: expected 10 or 12 digits")
        #expect(message("81121A-9876") == "invalid personal identity number: unexpected characters")
        #expect(message("20271218-0000")?.hasPrefix("invalid personal identity number") == true)
        for text in ["811218-9875", "811318-9876", "8112189"] { #expect(message(text)?.contains(text) == false) }
    }

    /// Random valid numbers (ordinary and coordination, both centuries) read
    /// back identically in every form; any single changed digit is refused
    /// (the Luhn digit catches every single-digit error).
    @Test func randomNumbersRoundTripAndEverySingleDigitErrorIsCaught() throws {
        var random = SeededGenerator(seed: 0x5EED_1234)
        for _ in 0..<2_000 {
            let year = Int.random(in: 1927...2025, using: &random)
            let month = Int.random(in: 1...12, using: &random)
            let day = Int.random(in: 1...Personnummer.daysIn(month: month, year: year), using: &random)
            let field = Bool.random(using: &random) ? day + 60 : day
            let serial = Int.random(in: 0...999, using: &random)
            let nine = [year / 10 % 10, year % 10, month / 10, month % 10, field / 10, field % 10, serial / 100, serial / 10 % 10, serial % 10]
            let check = Personnummer.luhn(nine[...])
            let long = String(format: "%04d", year) + (nine.dropFirst(2) + [check]).map(String.init).joined()
            for form in Personnummer.Form.allCases {
                let written = try normalise(long, form)
                #expect(try normalise(written) == long, "\(form.rawValue)")
            }
            let position = Int.random(in: 4..<12, using: &random)
            var changed = Array(long)
            let original = changed[position].wholeNumberValue ?? 0
            changed[position] = Character(String((original + Int.random(in: 1...9, using: &random)) % 10))
            let wrong = String(changed)
            #expect(throws: FilterError.self, "\(position)") { try normalise(wrong) }
        }
    }

    @Test func theFilterUsesTheMappingClockAndMapsArrays() throws {
        let scope = EvaluationScope(
            data: ["ids": ["811218-9876", "198112789873"]], event: [:], now: "2026-12-03T10:00:00.000Z", lookups: [:])
        #expect(try Template.parse("{{ ids | personnummer: '12-' }}").render(in: scope) == ["19811218-9876", "19811278-9873"])
        #expect(throws: (any Error).self) { try Template.parse("{{ ids | personnummer: '11' }}").render(in: scope) }
    }
}
