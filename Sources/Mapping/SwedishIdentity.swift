/// Swedish personal identity numbers (personnummer) and coordination numbers
/// (samordningsnummer), as Swedish payroll systems want them: validated
/// (date, Luhn check digit) and written in one fixed form.
///
/// Written by hand: no package on the offline list knows these numbers, and
/// the rules are short (Skatteverket, "Personnummer", SKV 704): `YYMMDD-NNNC`
/// or `YYYYMMDDNNNC`; `+` instead of `-` from the year the person turns 100;
/// the check digit `C` is the Luhn digit of the nine digits `YYMMDDNNN`; a coordination
/// number adds 60 to the day. Errors never repeat the number.
enum Personnummer {
    /// How the result is written.
    enum Form: String, CaseIterable {
        /// `YYYYMMDDNNNC` (Fortnox, Visma, most APIs).
        case twelve = "12"
        /// `YYYYMMDD-NNNC`.
        case twelveWithDash = "12-"
        /// `YYMMDDNNNC`.
        case ten = "10"
        /// `YYMMDD-NNNC`, `+` from the year the person turns 100.
        case tenWithSign = "10-"
    }

    /// A civil date, for century inference and date checks.
    struct Day: Comparable {
        var year: Int
        var month: Int
        var day: Int

        static func < (lhs: Day, rhs: Day) -> Bool {
            (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
        }
    }

    /// Validates `text` and writes it in `form`. `today` (the mapping
    /// clock's date) decides the century of a ten-digit number by year, as
    /// Skatteverket writes the sign: `+` from the year the person turns 100
    /// (born in `today.year - 100` or earlier), `-` or no sign before it.
    static func normalise(_ text: String, form: Form, today: Day) throws(FilterError) -> String {
        var digits: [Int] = []
        var sign: Character?
        var digitsBeforeSign = 0
        for character in text where !character.isWhitespace {
            if let digit = character.wholeNumberValue, character.isASCII {
                digits.append(digit)
            } else if (character == "-" || character == "+") && sign == nil {
                sign = character
                digitsBeforeSign = digits.count
            } else {
                throw FilterError("invalid personal identity number: unexpected characters")
            }
        }
        if sign != nil, digitsBeforeSign != digits.count - 4 {
            throw FilterError("invalid personal identity number: the sign stands before the last four digits")
        }
        let year: Int
        let rest: ArraySlice<Int>
        switch digits.count {
        case 12:
            if sign == "+" { throw FilterError("invalid personal identity number: '+' belongs to the ten-digit form") }
            year = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
            rest = digits[2...]
        case 10:
            let yy = digits[0] * 10 + digits[1]
            // The latest year ending in `yy` that is at most today's year (`-`) or today's year − 100 (`+`).
            let latest = sign == "+" ? today.year - 100 : today.year
            year = latest - ((latest - yy) % 100 + 100) % 100
            rest = digits[...]
        default:
            throw FilterError("invalid personal identity number: expected 10 or 12 digits")
        }
        let month = rest[rest.startIndex + 2] * 10 + rest[rest.startIndex + 3]
        let day = dayOfBirth(rest[rest.startIndex + 4] * 10 + rest[rest.startIndex + 5])
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else {
            throw FilterError("invalid personal identity number: not a date of birth")
        }
        guard Day(year: year, month: month, day: day) <= today else {
            throw FilterError("invalid personal identity number: date of birth in the future")
        }
        let ten = Array(rest)
        guard luhn(ten.prefix(9)) == ten[9] else { throw FilterError("invalid personal identity number: check digit does not match") }
        let long = String(format: "%04d", year) + ten.dropFirst(2).map(String.init).joined()
        let short = ten.map(String.init).joined()
        switch form {
        case .twelve: return long
        case .twelveWithDash: return String(long.prefix(8)) + "-" + String(long.suffix(4))
        case .ten: return short
        case .tenWithSign:
            return String(short.prefix(6)) + (today.year - year >= 100 ? "+" : "-") + String(short.suffix(4))
        }
    }

    /// The day of birth of a personnummer's day field (a coordination number adds 60).
    static func dayOfBirth(_ field: Int) -> Int {
        field > 60 ? field - 60 : field
    }

    /// The Luhn check digit of `digits` (weights 2, 1, 2, … from the left, as Skatteverket counts for nine digits).
    static func luhn(_ digits: ArraySlice<Int>) -> Int {
        var sum = 0
        for (index, digit) in digits.enumerated() {
            let product = digit * (index % 2 == 0 ? 2 : 1)
            sum += product / 10 + product % 10
        }
        return (10 - sum % 10) % 10
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The date part of an ISO-8601 timestamp (`2026-12-03T…`), the mapping clock's `now`.
    static func day(ofISO8601 text: String) -> Day? {
        let parts = text.prefix(10).split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        return Day(year: parts[0], month: parts[1], day: parts[2])
    }
}

/// A Swedish bank account as people write it (`8327-9, 123 456 789-0`,
/// `6789 123 456 789`, `1234-1234567`), split into the clearing number and
/// the account number that payroll systems take in separate fields.
///
/// The rules are Bankgirot's ("Bankernas kontonummer"): a clearing number
/// has four digits, five for Swedbank's 8xxx-x; the account number after it
/// has 7 digits (type 1 accounts) up to 10 (type 2: Nordea personkonto,
/// Swedbank, Handelsbanken's 9). The per-bank check digits are not verified
/// here (that needs Bankgirot's table per clearing range); the shape is.
/// Errors never repeat the number.
enum SwedishBankAccount {
    /// The clearing number (4 or 5 digits) and the account number (7 to 10
    /// digits). Written with separators, the first group is the clearing
    /// number (`8327-9` counts as one: Swedbank's check digit after a dash);
    /// a Swedbank number written `8327-1234567890` is refused, since its
    /// clearing digit cannot be told from the account's. Without separators
    /// the clearing number is the first four digits, five for 8xxx.
    static func split(_ text: String) throws(FilterError) -> (clearing: String, account: String) {
        var groups: [[UInt8]] = [[]]
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): groups[groups.count - 1].append(byte)
            case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: ","), UInt8(ascii: "."), 0x09:
                if !(groups.last ?? []).isEmpty { groups.append([]) }
            default: throw FilterError("invalid Swedish bank account: unexpected characters")
            }
        }
        groups = groups.filter { !$0.isEmpty }
        let digits = groups.flatMap { $0 }
        guard let first = digits.first, first != UInt8(ascii: "0") else { throw FilterError("invalid Swedish bank account: no clearing number") }
        let swedbank = first == UInt8(ascii: "8")
        let clearingLength: Int
        if groups.count == 1 {
            clearingLength = swedbank ? 5 : 4
        } else if groups[0].count == 5 && swedbank {
            clearingLength = 5
        } else if groups[0].count == 4 && swedbank {
            // 8327-9 …: the check digit stands alone after the dash; otherwise the fifth digit is missing.
            guard groups[1].count == 1 else {
                throw FilterError("invalid Swedish bank account: a Swedbank clearing number has five digits (8xxx-x)")
            }
            clearingLength = 5
        } else if groups[0].count == 4 {
            clearingLength = 4
        } else {
            throw FilterError("invalid Swedish bank account: the clearing number (the first group) must have 4 digits, 5 for 8xxx-x")
        }
        let account = digits.dropFirst(clearingLength)
        guard digits.count > clearingLength, (7...10).contains(account.count) else {
            throw FilterError("invalid Swedish bank account: the account number after the clearing number must have 7 to 10 digits")
        }
        return (String(decoding: digits.prefix(clearingLength), as: UTF8.self), String(decoding: account, as: UTF8.self))
    }
}
