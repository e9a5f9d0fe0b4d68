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

    @Test func theCenturyOfATenDigitNumberFollowsTheSignAndTheYear() throws {
        // 121203: with '-' under 100 (2012); with '+' 100 or more (1912).
        #expect(try normalise("121203-0009").hasPrefix("2012"))
        #expect(try normalise("121203+0009").hasPrefix("1912"))
        // The sign goes by year (Skatteverket: '+' from the year the person turns 100): born 4 December 1926,
        // the person writes '+' all through 2026, before the birthday too.
        #expect(try normalise("261204+0002").hasPrefix("1926"))
        #expect(try normalise("19261204-0002", .tenWithSign) == "261204+0002")
        #expect(try normalise("19270101-0007", .tenWithSign) == "270101-0007", "turns 100 next year: still '-'")
        // So '261204-' in 2026 is someone born this month, after today: refused.
        #expect(message("261204-0002") == "invalid personal identity number: date of birth in the future")
        // On 1 March 2026, 260601+ is 1926 (turns 100 this year), 260601- would be born in June 2026.
        let march = Personnummer.Day(year: 2026, month: 3, day: 1)
        #expect(try Personnummer.normalise("260601+0003", form: .twelve, today: march) == "192606010003")
        #expect(try Personnummer.normalise("192606010003", form: .tenWithSign, today: march) == "260601+0003")
        #expect(throws: FilterError.self) { try Personnummer.normalise("260601-0003", form: .twelve, today: march) }
        #expect(try normalise("19121203-0009", .tenWithSign) == "121203+0009", "114 years: '+'")
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
            let year = Int.random(in: 1900...2025, using: &random)
            let month = Int.random(in: 1...12, using: &random)
            let day = Int.random(in: 1...Personnummer.daysIn(month: month, year: year), using: &random)
            let field = Bool.random(using: &random) ? day + 60 : day
            let serial = Int.random(in: 0...999, using: &random)
            let nine = [year / 10 % 10, year % 10, month / 10, month % 10, field / 10, field % 10, serial / 100, serial / 10 % 10, serial % 10]
            let check = Personnummer.luhn(nine[...])
            let long = String(format: "%04d", year) + (nine.dropFirst(2) + [check]).map(String.init).joined()
            // Without a sign a ten-digit number means under 100 this year: only the signed forms carry older people.
            for form in Personnummer.Form.allCases where form != .ten || 2026 - year < 100 {
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
