import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Testing

@testable import StoreSQLite

@Suite("Retention of raw bodies")
struct RetentionTests {
    let t0 = Timestamp(seconds: 1_800_000_000)
    let day: Int64 = 86_400_000

    @Test func bodiesGoAfterTheirJobsAreTerminalForLongEnoughAndDedupeKeysStay() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "done", jobs: [("m", "k1", .rerun)], at: t0)
        _ = await fixture.ingest(candidate: "open", jobs: [("m", "k2", .rerun)], at: t0)
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        try await fixture.store.complete(jobID: claimed[0].id, owner: "A", completion: .done(capture: nil), now: t0)
        try await fixture.store.complete(jobID: claimed[1].id, owner: "A", completion: .held(.configuration("waiting")), now: t0)
        let quarantined = await fixture.store.ingest(IngestItem(body: Array("garbage".utf8), receivedAt: t0, content: .quarantine(reason: "bad")))

        // 29 days later nothing is due.
        var purged = try await fixture.store.purgeExpiredBodies(now: t0.adding(milliseconds: 29 * day), policy: RetentionPolicy())
        #expect(purged.inbox == 0 && purged.quarantine == 0)
        purged = try await fixture.store.purgeExpiredBodies(now: t0.adding(milliseconds: 31 * day), policy: RetentionPolicy())
        #expect(purged.inbox == 1)  // the held job keeps the other body
        #expect(purged.quarantine == 1)
        // The ended job's rendered request is cleared too; the held one keeps its own.
        let payloads = try await fixture.store.database.read { db in
            try String.fetchAll(db, sql: "SELECT CAST(payload AS TEXT) FROM jobs ORDER BY id")
        }
        #expect(payloads[0] == "{}")
        #expect(payloads[1] != "{}")
        let bodies = try await fixture.store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT subject_id, body IS NULL AS gone FROM inbox ORDER BY id").map {
                ($0["subject_id"] as String, $0["gone"] as Bool)
            }
        }
        #expect(bodies.map(\.0) == ["done", "open"])
        #expect(bodies.map(\.1) == [true, false])

        // A late transport retry of the purged body is still a duplicate.
        let again = await fixture.ingest(candidate: "done", jobs: [("m", "k1", .rerun)], at: t0.adding(milliseconds: 32 * day))
        guard case .duplicate = again else {
            Issue.record("a purged body came back: \(again)")
            return
        }
        let retry = await fixture.store.ingest(
            IngestItem(body: Array("garbage".utf8), receivedAt: t0.adding(milliseconds: 32 * day), content: .quarantine(reason: "bad")))
        if case .quarantined(let id, let duplicate) = retry, case .quarantined(let first, _) = quarantined {
            #expect(duplicate)
            #expect(id == first)
        } else {
            Issue.record("quarantine retry not deduplicated")
        }
    }
}

@Suite("Retention of staged CSV rows")
struct CSVRetentionTests {
    @Test func rowsOfLongExportedPeriodsAreDeleted() async throws {
        let fixture = try StoreFixture()
        let day: Int64 = 86_400
        let t0: Int64 = 1_800_000_000
        let old = CSVPeriod(start: t0, end: t0 + day)
        let open = CSVPeriod(start: t0 + 40 * day, end: t0 + 41 * day)
        _ = try await fixture.store.stage(
            mapping: "m", period: old, openPeriod: old, rowKey: "k1", receivedAt: Timestamp(seconds: t0 + 10), jobID: 1,
            row: ["iban": "SE62"], policy: .skip, companyID: "c", subjectID: "p1")
        _ = try await fixture.store.stage(
            mapping: "m", period: open, openPeriod: open, rowKey: "k2", receivedAt: Timestamp(seconds: t0 + 40 * day + 10), jobID: 2,
            row: ["iban": "SE63"], policy: .skip, companyID: "c", subjectID: "p2")
        #expect(try fixture.store.claimCSVExport(mapping: "m", period: old, owner: "a", now: t0 + day, staleAfter: 600, redo: false))
        try fixture.store.completeCSVExport(mapping: "m", period: old, file: "/x.csv", rows: 1, now: t0 + day, upload: nil)
        try await fixture.store.purgeExpiredBodies(now: Timestamp(seconds: t0 + 20 * day), policy: RetentionPolicy())
        #expect(try fixture.store.csvRowCount(mapping: "m", periodStart: old.start) == 1, "not yet 30 days")
        try await fixture.store.purgeExpiredBodies(now: Timestamp(seconds: t0 + 40 * day), policy: RetentionPolicy())
        #expect(try fixture.store.csvRowCount(mapping: "m", periodStart: old.start) == 0)
        #expect(try fixture.store.csvRowCount(mapping: "m", periodStart: open.start) == 1, "open periods are never purged")
    }
}
