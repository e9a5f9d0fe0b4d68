import Foundation
import Mapping
import Testing

@testable import Clocks

@Suite("Cron schedule")
struct CronScheduleTests {
    let stockholm = "Europe/Stockholm"

    /// Unix seconds of a UTC wall time.
    func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int = 0) -> Int64 {
        Int64(CivilCalendar.daysFromCivil(y, mo, d)) * 86_400 + Int64(h * 3600 + mi * 60)
    }

    func local(_ seconds: Int64?, _ zone: String = "Europe/Stockholm") -> String {
        guard let seconds, let tz = TimeZone(identifier: zone) else { return "nil" }
        let t = CivilCalendar.local(seconds, in: tz)
        return String(format: "%04d-%02d-%02d %02d:%02d", t.year, t.month, t.day, t.hour, t.minute)
    }

    @Test func nightlyAtTwo() throws {
        let cron = try CronSchedule("0 2 * * *", timeZone: stockholm)
        #expect(local(cron.next(after: utc(2026, 1, 10, 12))) == "2026-01-11 02:00")
        #expect(cron.next(after: utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 1))  // CET = UTC+1
        #expect(cron.next(after: utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 0))  // CEST = UTC+2
    }

    @Test func springForwardGapRunsAtTheFirstValidInstant() throws {
        // 2026-03-29 02:00 → 03:00 in Stockholm: 02:30 does not exist.
        let cron = try CronSchedule("30 2 * * *", timeZone: stockholm)
        let fire = cron.next(after: utc(2026, 3, 28, 12))
        #expect(local(fire) == "2026-03-29 03:00")
        #expect(fire == utc(2026, 3, 29, 1))
        #expect(local(cron.next(after: try #require(fire))) == "2026-03-30 02:30")
    }

    @Test func fallBackOverlapRunsOnceAtTheFirstOccurrence() throws {
        // 2026-10-25 03:00 → 02:00: 02:30 happens twice (00:30Z and 01:30Z).
        let cron = try CronSchedule("30 2 * * *", timeZone: stockholm)
        let fire = try #require(cron.next(after: utc(2026, 10, 24, 12)))
        #expect(fire == utc(2026, 10, 25, 0, 30))
        #expect(local(cron.next(after: fire)) == "2026-10-26 02:30")
    }

    @Test func wildcardHoursRunAtEveryRealInstant() throws {
        let cron = try CronSchedule("30 * * * *", timeZone: stockholm)
        var fires: [Int64] = []
        var t = utc(2026, 10, 24, 22)
        while fires.count < 6, let next = cron.next(after: t) {
            fires.append(next)
            t = next
        }
        // 00:30, 01:30, 02:30 (CEST), 02:30 (CET), 03:30, 04:30 local: hourly in real time.
        #expect(fires == (0..<6).map { utc(2026, 10, 24, 22, 30) + Int64($0) * 3600 })
        // Spring: 02:30 does not exist, so 01:30 is followed by 03:30, one real hour later.
        let spring = try #require(cron.next(after: utc(2026, 3, 29, 0, 0)))
        #expect(local(spring) == "2026-03-29 01:30")
        #expect(cron.next(after: spring) == spring + 3600)
    }

    @Test func vixieOrRuleListsRangesAndSteps() throws {
        // The 1st of the month OR any Monday, at 06:00 UTC.
        let cron = try CronSchedule("0 6 1 * 1", timeZone: "UTC")
        #expect(local(cron.next(after: utc(2026, 11, 29, 12)), "UTC") == "2026-11-30 06:00")  // a Monday
        #expect(local(cron.next(after: utc(2026, 11, 30, 12)), "UTC") == "2026-12-01 06:00")  // the 1st
        let steps = try CronSchedule("*/15 9-17 * * 1-5", timeZone: "UTC")
        #expect(local(steps.next(after: utc(2026, 11, 27, 17, 50)), "UTC") == "2026-11-30 09:00")  // Friday evening → Monday
        #expect(local(steps.next(after: utc(2026, 11, 30, 9, 0)), "UTC") == "2026-11-30 09:15")
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule("60 * * * *", timeZone: "UTC") }
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule("* * *", timeZone: "UTC") }
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule("* * * * *", timeZone: "Mars/Base") }
    }

    @Test func periodsAreHalfOpenBetweenFires() throws {
        let cron = try CronSchedule("0 2 * * *", timeZone: stockholm)
        // Spring: 02:00 does not exist on 2026-03-29, so that day's fire is 03:00 and the period is 23 real hours.
        let spring = try #require(cron.period(containing: utc(2026, 3, 29, 12)))
        #expect(local(spring.start) == "2026-03-29 03:00")
        #expect(local(spring.end) == "2026-03-30 02:00")
        #expect(spring.end - spring.start == 23 * 3600)
        // Autumn: the period that holds the repeated hour is 25 real hours.
        let autumn = try #require(cron.period(containing: utc(2026, 10, 25, 12)))
        #expect(autumn.start == utc(2026, 10, 25, 0))
        #expect(autumn.end == utc(2026, 10, 26, 1))
        // An instant exactly at a fire opens the next period.
        let boundary = try #require(cron.period(containing: autumn.end))
        #expect(boundary.start == autumn.end)
    }
}
