import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Logging
import Testing

@testable import StoreSQLite

@Suite("Deadline lane, expired jobs and archive records")
struct ArchiveStoreTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    func ingestArchiveJobs(_ fixture: StoreFixture, deadlines: [(item: String, hours: Int64)], plus rest: Bool) async throws {
        let body = Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"p1"}}}"#.utf8)
        let envelope = try #require(try? WebhookEnvelope.read(body))
        var planned = deadlines.map {
            PlannedJob(
                mapping: "cv-archive", item: $0.item, kind: "archive", effectKey: "c1:p1:\($0.item)", payload: ["url": "https://x"],
                mappingHash: "h", crashPolicy: .rerun, deadline: t0.adding(.seconds($0.hours * 3600)))
        }
        if rest {
            planned.append(PlannedJob(mapping: "payroll", kind: "rest", effectKey: "c1:p1", payload: [:], mappingHash: "h", crashPolicy: .hold))
        }
        let outcome = await fixture.store.ingest(
            IngestItem(body: body, receivedAt: t0, content: .event(envelope, disposition: .routed, jobs: planned, company: nil)))
        guard case .stored = outcome else {
            Issue.record("not stored: \(outcome)")
            return
        }
    }

    @Test func theDeadlineLaneClaimsEarliestDeadlineFirstAndTheOtherLaneNeverSeesIt() async throws {
        let fixture = try StoreFixture()
        try await ingestArchiveJobs(fixture, deadlines: [("late", 20), ("soon", 1), ("middle", 5)], plus: true)
        let general = try await fixture.store.claimDueJobs(
            owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)),
            lane: .dueTime)
        #expect(general.map(\.kind) == ["rest"])
        var order: [String] = []
        for _ in 0..<3 {
            let claimed = try await fixture.store.claimDueJobs(
                owner: "B", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30)),
                lane: .earliestDeadline)
            order += claimed.map(\.item)
            #expect(claimed.first?.deadline != nil)
        }
        #expect(order == ["soon", "middle", "late"])
        // Nothing due in the general lane: it must not be woken for the archive's jobs.
        #expect(try await fixture.store.nextWakeUp(lane: .dueTime, after: t0) == t0.adding(.seconds(30)))
    }

    @Test func anExpiredJobIsTerminalAndWritesNoEffect() async throws {
        let fixture = try StoreFixture()
        try await ingestArchiveJobs(fixture, deadlines: [("cv", 1)], plus: false)
        let job = try #require(
            try await fixture.store.claimDueJobs(
                owner: "A", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30)),
                lane: .earliestDeadline
            ).first)
        try await fixture.store.complete(jobID: job.id, owner: "A", completion: .expired(reason: "URL expired"), now: t0)
        #expect(try fixture.state(of: job.id) == "expired")
        #expect(JobState.expired.isTerminal)
        let effects = try await fixture.store.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM effects") }
        #expect(effects == 0, "an expired file was never archived: a re-send may still archive it")
        let counts = try await fixture.store.jobStatistics(now: t0).counts
        #expect(counts["expired"] == 1)
    }

    @Test func archiveRecordsAreUniquePerCandidateAndContent() async throws {
        let fixture = try StoreFixture()
        let record = ArchivedFile(
            companyID: "c1", candidateID: "p1", jobID: 1, mapping: "cv-archive", kind: "cv", originalName: "cv.pdf",
            contentType: "application/pdf", sniffedType: "application/pdf", typeMismatch: nil, size: 4,
            sha256: String(repeating: "ab", count: 32), path: "c1/p1/cv-abababababababab.pdf", downloadedAt: t0,
            urlExpiry: t0, sourceURL: "https://x/cv.pdf", retainUntil: t0.adding(.seconds(86_400)))
        let first = try await fixture.store.recordArchivedFile(record)
        var again = record
        again.kind = "answer-1"
        again.path = "c1/p1/answer-1-abababababababab.pdf"
        let second = try await fixture.store.recordArchivedFile(again)
        #expect(second.id == first.id && second.path == record.path, "the first record of that content wins")
        #expect(try await fixture.store.archivedFile(companyID: "c1", candidateID: "p1", sha256: record.sha256)?.kind == "cv")
        #expect(try fixture.store.archivedFiles(retainedBefore: t0, afterID: 0, limit: 10).isEmpty)
        #expect(try fixture.store.archivedFiles(retainedBefore: t0.adding(.seconds(86_400)), afterID: 0, limit: 10).count == 1)
        try fixture.store.deleteArchivedFile(id: try #require(first.id))
        #expect(try fixture.store.archivedFiles(candidateID: "p1").isEmpty)
    }
}
