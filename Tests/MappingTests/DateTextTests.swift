import Testing

@testable import Mapping

@Suite("date filter")
struct DateTextTests {
    @Test func jobylonFormats() throws {
        #expect(try DateText.format("2025-01-01", pattern: "dd.MM.yyyy", zone: nil, inputZone: nil) == "01.01.2025")
        #expect(try DateText.format("2023-06-16 10:40:32", pattern: "yyyy-MM-dd HH:mm", zone: nil, inputZone: nil) == "2023-06-16 10:40")
        #expect(
            try DateText.format("2023-06-16T10:40:32Z", pattern: "yyyy-MM-dd HH:mm:ssXXX", zone: "Europe/Stockholm", inputZone: nil)
                == "2023-06-16 12:40:32+02:00")
        #expect(try DateText.format("2023-06-16T10:40:32.5+01:00", pattern: "HH:mm:ss.SSS", zone: "UTC", inputZone: nil) == "09:40:32.500")
    }

    @Test func zoneLessTimesAreReadInTheInputZone() throws {
        #expect(try DateText.format("2023-01-16 10:00:00", pattern: "HH:mm", zone: "UTC", inputZone: "Europe/Stockholm") == "09:00")
        #expect(try DateText.format("2023-07-16 10:00:00", pattern: "HH:mm", zone: "UTC", inputZone: "Europe/Stockholm") == "08:00")
    }

    @Test func daylightSavingTransitionsInStockholm() throws {
        // 2026-03-29: 02:00 → 03:00. 00:30Z is 01:30 CET; 01:30Z is 03:30 CEST.
        #expect(try DateText.format("2026-03-29T00:30:00Z", pattern: "HH:mmXXX", zone: "Europe/Stockholm", inputZone: nil) == "01:30+01:00")
        #expect(try DateText.format("2026-03-29T01:30:00Z", pattern: "HH:mmXXX", zone: "Europe/Stockholm", inputZone: nil) == "03:30+02:00")
        // A wall time inside the gap lands after it.
        #expect(try DateText.format("2026-03-29 02:30:00", pattern: "HH:mmXXX", zone: "Europe/Stockholm", inputZone: nil) == "03:30+02:00")
        // 2026-10-25: 03:00 → 02:00; an ambiguous 02:30 takes the first occurrence (CEST).
        #expect(try DateText.format("2026-10-25 02:30:00", pattern: "HH:mmXXX", zone: "UTC", inputZone: "Europe/Stockholm") == "00:30Z")
        #expect(try DateText.format("2026-10-25T01:30:00Z", pattern: "HH:mmXXX", zone: "Europe/Stockholm", inputZone: nil) == "02:30+01:00")
    }

    @Test func invalidDatesAndZones() {
        #expect(throws: FilterError.self) { try DateText.format("2025-02-30", pattern: "yyyy", zone: nil, inputZone: nil) }
        #expect(throws: FilterError.self) { try DateText.format("tomorrow", pattern: "yyyy", zone: nil, inputZone: nil) }
        #expect(throws: FilterError.self) { try DateText.format("2025-01-01 10:00:00", pattern: "yyyy", zone: "Mars/Olympus", inputZone: nil) }
        #expect((try? DateText.format("2024-02-29", pattern: "d/M/yy", zone: nil, inputZone: nil)) == "29/2/24")
    }

    @Test func civilArithmeticRoundTrips() {
        for days in stride(from: -800_000, through: 800_000, by: 997) {
            let (y, m, d) = DateText.civilFromDays(days)
            #expect(DateText.daysFromCivil(y, m, d) == days)
        }
    }
}
