import Clocks

/// What a payroll file's column holds, so a spreadsheet reads it as that.
///
/// A spreadsheet guesses a cell's type from its text: `+46701234567` becomes
/// the number 46701234567 and an employee number `00123` loses its zeros.
/// Text columns (the default) are therefore always quoted, and a spreadsheet
/// told to keep quoted fields as text keeps them exactly; number and date
/// columns are written bare so the same import reads them as numbers and
/// dates. Their values are checked when the event is planned (a rule of the
/// mapping language, not of the writer), so a file never holds a "number"
/// that is not one.
public enum CSVColumnType: String, Sendable, Hashable, CaseIterable {
    /// Any text; always quoted.
    case text
    /// `-`? digits, optionally one decimal mark (`.`, or `,` unless the file's
    /// delimiter is a comma) and more digits: `12500`, `-3.5`, `1234,50`.
    case number
    /// An ISO 8601 calendar date, `yyyy-MM-dd`: the one layout every
    /// spreadsheet reads as a date whatever its locale.
    case date

    /// Why `text` cannot be written in a column of this type, or `nil` when it
    /// can. An empty value is always allowed (an empty cell). The reason names
    /// the rule, never the value (it may be personal data).
    public func problem(with text: String, delimiter: String) -> String? {
        if text.isEmpty { return nil }
        switch self {
        case .text:
            return nil
        case .number:
            return CSVColumnType.isNumber(text, commaAllowed: delimiter != ",")
                ? nil
                : "type number: the value is not a number (an optional -, digits, at most one decimal mark"
                    + (delimiter != "," ? " . or ," : " .") + ")"
        case .date:
            return CSVColumnType.isISODate(text) ? nil : "type date: the value is not a yyyy-MM-dd date (use the date filter)"
        }
    }

    static func isNumber(_ text: String, commaAllowed: Bool) -> Bool {
        var bytes = Substring(text).utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        var digitsBefore = 0
        var digitsAfter = 0
        var sawMark = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if sawMark { digitsAfter += 1 } else { digitsBefore += 1 }
            case UInt8(ascii: "."),
                UInt8(ascii: ",") where commaAllowed:
                if sawMark || digitsBefore == 0 { return false }
                sawMark = true
            default:
                return false
            }
        }
        return digitsBefore > 0 && (!sawMark || digitsAfter > 0)
    }

    static func isISODate(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), (1...12).contains(month), day >= 1 else {
            return false
        }
        return day <= CivilCalendar.daysIn(month: month, year: year)
    }
}
