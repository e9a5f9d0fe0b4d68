import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Logging
import Testing

@testable import StoreSQLite

@Suite("Erasing a candidate")
struct ErasureTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    func seed(_ fixture: StoreFixture) async throws {
        for candidate in ["p1", "p2"] {
            guard
                case .stored = await fixture.ingest(
                    candidate: candidate, jobs: [("payroll", "c1:\(candidate)", .hold), ("audit", "c1:\(candidate):a", .rerun)], at: t0)
            else {
                Issue.record("not stored")
                return
            }
        }
        // One delivered job of p1 (its capture holds data), one still open.
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30)))
        let first = try #require(claimed.first)
        try await fixture.store.complete(jobID: first.id, owner: "A", completion: .done(capture: ["employee": "E-1"]), now: t0)
        _ = await fixture.store.ingest(
            IngestItem(body: Array(#"{"broken": "p1 as in candidate p1"#.utf8), receivedAt: t0, content: .quarantine(reason: "bad")))
        _ = await fixture.store.ingest(IngestItem(body: Array(#"{"broken": "p2 only"#.utf8), receivedAt: t0, content: .quarantine(reason: "bad")))
        try await fixture.store.database.write { db in
            for candidate in ["p1", "p2"] {
                try db.execute(
                    sql: """
                        INSERT INTO csv_rows(mapping, period_start, period_end, row_key, received_at, job_id, row, row_hash, company_id, subject_id)
                        VALUES ('csv', 0, 1, ?, 0, 1, X'00', X'00', 'c1', ?)
                        """, arguments: [candidate, candidate])
                try db.execute(
                    sql:
                        "INSERT INTO csv_exported_keys(mapping, row_key, row_hash, period_start, company_id, subject_id) VALUES ('csv', ?, X'00', 0, 'c1', ?)",
                    arguments: [candidate, candidate])
            }
            try db.execute(
                sql:
                    "INSERT INTO csv_exports(mapping, period_start, period_end, state, file, rows) VALUES ('csv', 0, 1, 'done', '/share/hired-2026-11-28.csv', 2)"
            )
        }
        for candidate in ["p1", "p2"] {
            _ = try await fixture.store.recordArchivedFile(
                ArchivedFile(
                    companyID: "c1", candidateID: candidate, jobID: 1, mapping: "cv-archive", kind: "cv", originalName: "cv.pdf", contentType: nil,
                    sniffedType: nil, typeMismatch: nil, size: 1, sha256: String(repeating: candidate == "p1" ? "a" : "b", count: 64),
                    path: "c1/\(candidate)/cv.pdf", downloadedAt: t0, urlExpiry: nil, sourceURL: "https://x/cv.pdf", retainUntil: t0))
        }
    }

    @Test func aDryRunReportsAndChangesNothing() async throws {
        let fixture = try StoreFixture()
        try await seed(fixture)
        let report = try fixture.store.erase(candidateID: "p1", companyID: nil, now: t0, dryRun: true)
        #expect(report.events == 1 && report.jobsCleared == 2 && report.jobsCancelled == 1 && report.quarantined == 1 && report.csvRows == 1)
        #expect(report.exportedFiles == ["/share/hired-2026-11-28.csv"])
        #expect(report.archiveFiles.map(\.path) == ["c1/p1/cv.pdf"])
        let bodies = try await fixture.store.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE body IS NOT NULL") }
        #expect(bodies == 2)
        #expect(try await fixture.store.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM csv_rows") } == 2)
    }

    @Test func erasureRemovesOneCandidatesDataAndKeepsTheLedgerAndOthers() async throws {
        let fixture = try StoreFixture()
        try await seed(fixture)
        let report = try fixture.store.erase(candidateID: "p1", companyID: "c1", now: t0, dryRun: false)
        #expect(report.events == 1 && report.jobsCancelled == 1)
        let check = try fixture.store.database.read { db in
            (
                try Row.fetchAll(db, sql: "SELECT subject_id, body IS NULL AS erased FROM inbox ORDER BY id").map {
                    "\($0["subject_id"] as String):\($0["erased"] as Bool)"
                },
                try Row.fetchAll(db, sql: "SELECT subject_id, state, CAST(payload AS TEXT) AS payload, capture FROM jobs ORDER BY id"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM quarantine WHERE body IS NULL"),
                try String.fetchAll(db, sql: "SELECT subject_id FROM csv_rows"),
                try String.fetchAll(db, sql: "SELECT subject_id FROM csv_exported_keys"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM effects WHERE effect_key LIKE 'c1:p1%'"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE body_sha256 IS NOT NULL")
            )
        }
        #expect(check.0 == ["p1:true", "p2:false"])
        let p1Jobs = check.1.filter { $0["subject_id"] as String == "p1" }
        #expect(p1Jobs.allSatisfy { $0["payload"] as String == "{}" && ($0["capture"] as Data?) == nil })
        #expect(p1Jobs.map { $0["state"] as String }.sorted() == ["cancelled", "done"], "the open job can no longer be sent")
        #expect(check.1.filter { $0["subject_id"] as String == "p2" }.allSatisfy { $0["payload"] as String != "{}" })
        #expect(check.2 == 1, "only the quarantined body that mentions p1")
        #expect(check.3 == ["p2"] && check.4 == ["p2"])
        #expect(check.5 == 1, "the ledger still knows the hire was delivered, so a re-send is not sent again")
        #expect(check.6 == 2, "hashes stay: a late retry of the erased body is still a duplicate")
        // Erasing again finds nothing left to erase but stays correct.
        let again = try fixture.store.erase(candidateID: "p1", companyID: "c1", now: t0, dryRun: false)
        #expect(again.jobsCancelled == 0 && again.quarantined == 0 && again.csvRows == 0)
    }
}
