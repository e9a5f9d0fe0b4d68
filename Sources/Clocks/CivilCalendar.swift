import Foundation

/// Civil-calendar arithmetic and IANA offsets for other modules (schedules,
/// periods), so every part of the bridge computes dates the same way.
public enum CivilCalendar {
    /// A wall-clock time to the minute, in no zone of its own: only
    /// `instants(of:in:)` ties it to real instants. Nothing is validated, so an
    /// impossible date such as month 13 can be represented.
    public struct DateTime: Sendable, Hashable, Comparable {
        /// Proleptic Gregorian year, month 1–12, day 1–31, hour 0–23, minute 0–59 (not checked).
        public var year: Int, month: Int, day: Int, hour: Int, minute: Int

        /// Midnight unless `hour` and `minute` are given; values are stored as given, not normalised.
        public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0) {
            self.year = year
            self.month = month
            self.day = day
            self.hour = hour
            self.minute = minute
        }

        /// Wall-time order, field by field; across a fall-back change this is not the
        /// order of the instants.
        public static func < (a: DateTime, b: DateTime) -> Bool {
            (a.year, a.month, a.day, a.hour, a.minute) < (b.year, b.month, b.day, b.hour, b.minute)
        }

        /// `yyyy-MM-dd`
        public var dateText: String {
            String(format: "%04d-%02d-%02d", year, month, day)
        }
    }

    /// Gregorian rule: every fourth year, except centuries not divisible by 400.
    public static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    public static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// 0 = Sunday … 6 = Saturday.
    public static func weekday(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let days = daysFromCivil(year, month, day)
        return ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
    }

    /// 28–31; `month` must be 1–12 (any other value answers 31).
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Seconds east of UTC in `zone` at a Unix time.
    public static func offset(_ zone: TimeZone, atEpochSeconds seconds: Int64) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Every real instant (Unix seconds) whose wall time in `zone` is `local`:
    /// none inside a spring-forward gap, two inside a fall-back overlap.
    public static func instants(of local: DateTime, in zone: TimeZone) -> [Int64] {
        let wall = Int64(daysFromCivil(local.year, local.month, local.day)) * 86_400 + Int64(local.hour * 3600 + local.minute * 60)
        let before = offset(zone, atEpochSeconds: wall - 86_400)
        let after = offset(zone, atEpochSeconds: wall + 86_400)
        var result: [Int64] = []
        for candidateOffset in Set([before, after]).sorted(by: >) {
            let instant = wall - Int64(candidateOffset)
            if offset(zone, atEpochSeconds: instant) == candidateOffset { result.append(instant) }
        }
        return result.sorted()
    }

    /// The wall time of a Unix time in `zone`.
    public static func local(_ seconds: Int64, in zone: TimeZone) -> DateTime {
        let shifted = seconds + Int64(offset(zone, atEpochSeconds: seconds))
        let days = Int((Double(shifted) / 86_400).rounded(.down))
        let rest = Int(shifted - Int64(days) * 86_400)
        let (y, m, d) = civilFromDays(days)
        return DateTime(year: y, month: m, day: d, hour: rest / 3600, minute: rest % 3600 / 60)
    }
}
