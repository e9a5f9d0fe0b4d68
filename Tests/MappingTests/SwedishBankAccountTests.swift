import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("Swedish bank accounts: clearing number and account number")
struct SwedishBankAccountTests {
    @Test func theWaysPeopleWriteThemAreSplit() throws {
        #expect(try SwedishBankAccount.split("8327-9, 123 456 789-0") == ("83279", "1234567890"))
        #expect(try SwedishBankAccount.split("6789 123 456 789") == ("6789", "123456789"))
        #expect(try SwedishBankAccount.split("1234-1234567") == ("1234", "1234567"))
        #expect(try SwedishBankAccount.split("3300 811218-9876") == ("3300", "8112189876"))
        #expect(try SwedishBankAccount.split("5000.1234567") == ("5000", "1234567"))
        #expect(try SwedishBankAccount.split("83279 1234567890") == ("83279", "1234567890"))
        #expect(try SwedishBankAccount.split("832791234567890") == ("83279", "1234567890"))
    }

    /// Written with separators, the first group is the clearing number: a
    /// Swedbank number missing its fifth clearing digit is refused, never
    /// re-split into another account.
    @Test func theFirstGroupIsTheClearingNumber() {
        for text in ["8327-1234567890", "8327 123 456 789 0"] {
            #expect(throws: FilterError.self, "\(text)") { try SwedishBankAccount.split(text) }
        }
        #expect(throws: FilterError.self) { try SwedishBankAccount.split("123-4567890") }
        #expect(throws: FilterError.self) { try SwedishBankAccount.split("123456 7890123") }
    }

    @Test func wrongShapesAreRefusedWithoutRepeatingTheNumber() {
        for (text, expected) in [
            ("1234-123456", "the account number after the clearing number must have 7 to 10 digits"),
            ("1234-12345678901", "the account number after the clearing number must have 7 to 10 digits"),
            ("0123-1234567", "no clearing number"), ("SE45 5000 0000 0583 9825 7466", "unexpected characters"), ("", "no clearing number"),
        ] {
            do throws(FilterError) {
                _ = try SwedishBankAccount.split(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.message == "invalid Swedish bank account: \(expected)", "\(text)")
                #expect(text.isEmpty || !error.message.contains(text))
            }
        }
    }

    /// Random accounts written with random separators split back into their parts.
    @Test func randomAccountsWithRandomSeparatorsSplitBack() throws {
        var random = SeededGenerator(seed: 0xBA11)
        for _ in 0..<2_000 {
            let swedbank = Bool.random(using: &random)
            let clearing =
                (swedbank ? "8" : String(Int.random(in: 1...7, using: &random)))
                + (1...(swedbank ? 4 : 3)).map { _ in
                    String(Int.random(in: 0...9, using: &random))
                }.joined()
            let account = (0..<Int.random(in: 7...10, using: &random)).map { _ in String(Int.random(in: 0...9, using: &random)) }.joined()
            // The clearing number as one group (Swedbank's optionally as 8xxx-x), then the account with random separators.
            var written = swedbank && Bool.random(using: &random) ? String(clearing.prefix(4)) + "-" + String(clearing.suffix(1)) : clearing
            written.append([" ", "-", ", ", "."][Int.random(in: 0..<4, using: &random)])
            for character in account {
                written.append(character)
                if Int.random(in: 0..<4, using: &random) == 0 { written.append([" ", "-", ",", "."][Int.random(in: 0..<4, using: &random)]) }
            }
            #expect(try SwedishBankAccount.split(written) == (clearing, account), "\(written)")
        }
    }

    @Test func theFiltersGiveEachPart() throws {
        let scope = EvaluationScope(data: ["bank": "8327-9, 123 456 789-0", "none": ""], event: [:], now: "2026-12-03T10:00:00.000Z", lookups: [:])
        #expect(try Template.parse("{{ bank | clearing_number }}").render(in: scope) == "83279")
        #expect(try Template.parse("{{ bank | account_number }}").render(in: scope) == "1234567890")
        #expect(try Template.parse("{{ none | account_number }}").render(in: scope) == .null, "an unanswered field is no account, not a wrong one")
    }
}
