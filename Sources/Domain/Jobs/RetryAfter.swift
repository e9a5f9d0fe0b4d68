import Clocks
import Mapping

/// `Retry-After`: delta-seconds or an HTTP-date (IMF-fixdate).
public enum RetryAfter {
    /// The wait the header asks for, measured from `now`; a date in the past is
    /// zero, and anything unreadable is `nil` (the backoff alone applies then).
    public static func delay(_ value: String, now: Timestamp) -> Duration? {
        let trimmed = value.trimmingWhitespace()
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        // Sun, 06 Nov 1994 08:49:37 GMT
        let parts = trimmed.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        let days = CivilCalendar.daysFromCivil(year, monthIndex + 1, day)
        let epoch = Int64(days * 86_400 + time[0] * 3600 + time[1] * 60 + time[2])
        let delta = epoch * 1000 - now.milliseconds
        return .milliseconds(max(0, delta))
    }
}
