import Foundation

/// A 5-field cron schedule in an IANA time zone, with cronie's semantics.
///
/// Fields: minute hour day-of-month month day-of-week, each `*`, a value, a
/// range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`; day-of-week 0–7 (0
/// and 7 are Sunday). When both day fields are restricted, a day matches if
/// either does (the Vixie OR rule). Across daylight-saving changes: a fixed
/// time that falls in the spring-forward gap runs at the first valid instant
/// after it; in the fall-back overlap it runs once, at the first occurrence;
/// wildcard or stepped hours run at every real instant that matches.
public struct CronSchedule: Sendable, Hashable {
    /// The schedule text exactly as given to `init`.
    public let expression: String
    /// The IANA zone whose wall time the fields match; its DST rules decide gaps and overlaps.
    public let zone: TimeZone
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// `*` or a step in the hour field: every real matching instant fires.
    let hoursAreWildcard: Bool

    /// Why a schedule was refused; `description` names the unknown zone, the wrong
    /// field count or the field at fault.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses the five fields (separated by spaces, not tabs) and resolves the zone;
    /// throws for an unknown zone, a wrong field count, or a value, range or step
    /// that does not fit its field.
    public init(_ expression: String, timeZone: String) throws(ParseError) {
        guard let zone = TimeZone(identifier: timeZone) else { throw ParseError(description: "unknown time zone \"\(timeZone)\"") }
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else { throw ParseError(description: "a schedule has 5 fields (minute hour day month weekday), got \(fields.count)") }
        self.expression = expression
        self.zone = zone
        minutes = try CronSchedule.field(fields[0], 0...59, "minute")
        hours = try CronSchedule.field(fields[1], 0...23, "hour")
        daysOfMonth = try CronSchedule.field(fields[2], 1...31, "day of month")
        months = try CronSchedule.field(fields[3], 1...12, "month")
        daysOfWeek = Set(try CronSchedule.field(fields[4], 0...7, "day of week").map { $0 == 7 ? 0 : $0 })
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        hoursAreWildcard = fields[1].hasPrefix("*") || fields[1].contains("/")
    }

    static func field(_ text: String, _ range: ClosedRange<Int>, _ name: String) throws(ParseError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, let body = pieces.first else { throw ParseError(description: "invalid \(name) field \"\(text)\"") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw ParseError(description: "invalid step in \(name) field \"\(text)\"") }
                step = s
            }
            var lower = range.lowerBound
            var upper = range.upperBound
            if body != "*" {
                let bounds = body.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let a = Int(bounds[0]), range.contains(a) else {
                    throw ParseError(description: "\(name) must be within \(range.lowerBound)-\(range.upperBound): \"\(text)\"")
                }
                lower = a
                upper = pieces.count == 2 && bounds.count == 1 ? range.upperBound : a
                if bounds.count == 2 {
                    guard let b = Int(bounds[1]), range.contains(b), b >= a else {
                        throw ParseError(description: "invalid \(name) range \"\(text)\"")
                    }
                    upper = b
                }
            }
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    func dayMatches(_ date: CivilCalendar.DateTime) -> Bool {
        guard months.contains(date.month) else { return false }
        let dom = daysOfMonth.contains(date.day)
        let dow = daysOfWeek.contains(CivilCalendar.weekday(date.year, date.month, date.day))
        if dayOfMonthRestricted && dayOfWeekRestricted { return dom || dow }
        return dom && dow
    }

    /// The first fire strictly after `after` (Unix seconds), searching up to ~5 years.
    public func next(after: Int64) -> Int64? {
        let start = CivilCalendar.local(after, in: zone)
        var dayNumber = CivilCalendar.daysFromCivil(start.year, start.month, start.day) - 1
        for _ in 0..<(366 * 5 + 2) {
            let (y, m, d) = CivilCalendar.civilFromDays(dayNumber)
            dayNumber += 1
            let day = CivilCalendar.DateTime(year: y, month: m, day: d)
            guard dayMatches(day) else { continue }
            var best: Int64?
            var bestHour = 0
            hourLoop: for hour in hours.sorted() {
                // Wall times only run backwards across a fall-back hour: two hours past
                // the best candidate, nothing earlier can follow.
                if best != nil, hour > bestHour + 2 { break hourLoop }
                for minute in minutes.sorted() {
                    let local = CivilCalendar.DateTime(year: y, month: m, day: d, hour: hour, minute: minute)
                    var instants = CivilCalendar.instants(of: local, in: zone)
                    if instants.isEmpty {
                        // In a spring-forward gap: a fixed time runs at the first valid instant after it.
                        guard !hoursAreWildcard, let gapEnd = firstInstant(afterGapAt: local) else { continue }
                        instants = [gapEnd]
                    } else if !hoursAreWildcard {
                        instants = [instants[0]]  // fall-back overlap: once, at the first occurrence
                    }
                    for instant in instants where instant > after {
                        if best.map({ instant < $0 }) ?? true {
                            best = instant
                            bestHour = hour
                        }
                    }
                }
            }
            if let best { return best }
        }
        return nil
    }

    /// The instant the clocks jump to at a gap containing `local`.
    func firstInstant(afterGapAt local: CivilCalendar.DateTime) -> Int64? {
        let wall = Int64(CivilCalendar.daysFromCivil(local.year, local.month, local.day)) * 86_400 + Int64(local.hour * 3600 + local.minute * 60)
        let offsetBefore = Int64(CivilCalendar.offset(zone, atEpochSeconds: wall - 86_400))
        // Reading the wall time with the old offset lands just after the jump.
        let guess = wall - offsetBefore
        var probe = guess - 4 * 3600
        while probe < guess + 4 * 3600 {
            if Int64(CivilCalendar.offset(zone, atEpochSeconds: probe)) != offsetBefore { return probe }
            probe += 60
        }
        return nil
    }

    /// The period ending at `fire`: [previous fire, fire).
    public func period(endingAt fire: Int64) -> (start: Int64, end: Int64)? {
        guard let start = previous(before: fire) else { return nil }
        return (start, fire)
    }

    /// The last fire strictly before `instant`: searched in windows that double
    /// backwards from one minute, so frequent schedules stay cheap.
    public func previous(before instant: Int64) -> Int64? {
        var window: Int64 = 61
        while window < 6 * 366 * 86_400 {
            if let fire = next(after: instant - window), fire < instant {
                var last = fire
                while let following = next(after: last), following < instant { last = following }
                return last
            }
            window *= 2
        }
        return nil
    }

    /// The period [start, end) that contains `instant`: the one its next fire closes.
    public func period(containing instant: Int64) -> (start: Int64, end: Int64)? {
        guard let end = next(after: instant), let start = previous(before: end) else { return nil }
        return (start, end)
    }
}
