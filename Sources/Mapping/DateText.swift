import Clocks
import Foundation

/// Dates as Jobylon writes them (`2025-01-01`, `2023-06-16 10:40:32` with no
/// zone, ISO-8601 with `Z` or an offset) and as payroll files want them.
///
/// Written by hand because Foundation's `DateFormatter` costs microseconds per
/// call; this uses civil-date arithmetic and only asks `TimeZone` for UTC
/// offsets (DST-correct for any IANA zone).
enum DateText {
    struct Civil: Equatable {
        var year: Int, month: Int, day: Int
        var hour = 0, minute = 0, second = 0, millisecond = 0
    }

    struct Parsed {
        var civil: Civil
        var hasTime: Bool
        /// Seconds east of UTC when the text carried a zone.
        var offset: Int?
    }

    static func format(_ text: String, pattern: String, zone: String?, inputZone: String?) throws(FilterError) -> String {
        guard let parsed = parse(text) else { throw FilterError("not a date (expected YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' or ISO-8601)") }
        var civil = parsed.civil
        var offset = 0
        if parsed.hasTime {
            // An instant: from its own offset, or the input zone (default: the output zone, else UTC).
            let instant: Int
            if let own = parsed.offset {
                instant = epochSeconds(civil) - own
            } else {
                let sourceZone = try timeZone(inputZone ?? zone ?? "UTC")
                instant = localToInstant(civil, zone: sourceZone)
            }
            let target = try timeZone(zone ?? "UTC")
            offset = target.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
            civil = fromEpochSeconds(instant + offset, millisecond: civil.millisecond)
        }
        return render(civil, pattern: pattern, offset: offset)
    }

    static func timeZone(_ identifier: String) throws(FilterError) -> TimeZone {
        guard let zone = TimeZone(identifier: identifier) else { throw FilterError("unknown time zone '\(identifier)'") }
        return zone
    }

    /// The instant of a local wall-clock time. In a spring-forward gap the
    /// time is read with the offset before the gap (it lands after it); in a
    /// fall-back overlap the first occurrence wins.
    static func localToInstant(_ civil: Civil, zone: TimeZone) -> Int {
        let local = epochSeconds(civil)
        let before = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(local - 86_400)))
        let after = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(local + 86_400)))
        for offset in [max(before, after), min(before, after)] {
            let candidate = local - offset
            if zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(candidate))) == offset { return candidate }
        }
        return local - before
    }

    static func parse(_ text: String) -> Parsed? {
        let s = Array(text.trimmingWhitespace().utf8)
        var i = 0
        func number(_ digits: Int) -> Int? {
            guard i + digits <= s.count else { return nil }
            var value = 0
            for k in i..<(i + digits) {
                guard s[k] >= 48 && s[k] <= 57 else { return nil }
                value = value * 10 + Int(s[k] - 48)
            }
            i += digits
            return value
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < s.count, s[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var civil = Civil(year: year, month: month, day: day)
        if i == s.count { return Parsed(civil: civil, hasTime: false, offset: nil) }
        guard s[i] == 32 || s[i] == 84 else { return nil }  // ' ' or 'T'
        i += 1
        guard let hour = number(2), expect(58), let minute = number(2), hour < 24, minute < 60 else { return nil }
        civil.hour = hour
        civil.minute = minute
        if expect(58) {
            guard let second = number(2), second < 61 else { return nil }
            civil.second = min(second, 59)
            if expect(46) {
                var fraction = 0
                var digits = 0
                while i < s.count, s[i] >= 48 && s[i] <= 57 {
                    if digits < 3 {
                        fraction = fraction * 10 + Int(s[i] - 48)
                        digits += 1
                    }
                    i += 1
                }
                guard digits > 0 else { return nil }
                while digits < 3 {
                    fraction *= 10
                    digits += 1
                }
                civil.millisecond = fraction
            }
        }
        var offset: Int? = nil
        if i < s.count {
            if s[i] == 90 || s[i] == 122 {  // Z
                offset = 0
                i += 1
            } else if s[i] == 43 || s[i] == 45 {  // + -
                let sign = s[i] == 45 ? -1 : 1
                i += 1
                guard let h = number(2) else { return nil }
                _ = expect(58)
                let m = number(2) ?? 0
                offset = sign * (h * 3600 + m * 60)
            }
        }
        guard i == s.count else { return nil }
        return Parsed(civil: civil, hasTime: true, offset: offset)
    }

    static func daysIn(month: Int, year: Int) -> Int { CivilCalendar.daysIn(month: month, year: year) }

    static func daysFromCivil(_ y: Int, _ m: Int, _ d: Int) -> Int { CivilCalendar.daysFromCivil(y, m, d) }

    static func civilFromDays(_ z: Int) -> (Int, Int, Int) {
        let civil = CivilCalendar.civilFromDays(z)
        return (civil.year, civil.month, civil.day)
    }

    static func epochSeconds(_ c: Civil) -> Int {
        daysFromCivil(c.year, c.month, c.day) * 86_400 + c.hour * 3600 + c.minute * 60 + c.second
    }

    static func fromEpochSeconds(_ seconds: Int, millisecond: Int) -> Civil {
        let days = Int((Double(seconds) / 86_400).rounded(.down))
        let rest = seconds - days * 86_400
        let (y, m, d) = civilFromDays(days)
        return Civil(year: y, month: m, day: d, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60, millisecond: millisecond)
    }

    /// Tokens: yyyy yy MM M dd d HH H mm ss SSS XXX; any other character is copied.
    static func render(_ c: Civil, pattern: String, offset: Int) -> String {
        let p = Array(pattern)
        var out = ""
        var i = 0
        func run(_ ch: Character) -> Int {
            var n = 0
            while i + n < p.count, p[i + n] == ch { n += 1 }
            return n
        }
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        while i < p.count {
            let ch = p[i]
            let n = run(ch)
            switch ch {
            case "y": out += n == 2 ? pad(c.year % 100, 2) : pad(c.year, 4)
            case "M": out += pad(c.month, n >= 2 ? 2 : 1)
            case "d": out += pad(c.day, n >= 2 ? 2 : 1)
            case "H": out += pad(c.hour, n >= 2 ? 2 : 1)
            case "m": out += pad(c.minute, 2)
            case "s": out += pad(c.second, 2)
            case "S": out += pad(c.millisecond, 3)
            case "X":
                if offset == 0 {
                    out += "Z"
                } else {
                    let a = abs(offset)
                    out += (offset < 0 ? "-" : "+") + pad(a / 3600, 2) + ":" + pad(a % 3600 / 60, 2)
                }
            default:
                out += String(repeating: ch, count: n)
            }
            i += n
        }
        return out
    }

    /// ISO-8601 UTC with milliseconds, for `now`.
    public static func iso8601(epochMilliseconds ms: Int64) -> String {
        let seconds = Int((Double(ms) / 1000).rounded(.down))
        let civil = fromEpochSeconds(seconds, millisecond: Int(ms - Int64(seconds) * 1000))
        return render(civil, pattern: "yyyy-MM-dd'T'HH:mm:ss.SSSXXX".replacingAll("'", with: ""), offset: 0)
    }
}
