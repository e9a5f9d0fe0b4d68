import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Logging
import Synchronization
import Testing

@testable import StoreSQLite

@Suite("No single job blocks the others")
struct SetAsideTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    /// A job whose claim fails (here: a trigger that aborts its move to
    /// `running`, as a corrupt row or a constraint would) is set aside with
    /// its reason, reported once, and every other job is claimed.
    @Test func aJobWhoseClaimFailsIsSetAsideAndTheOthersFlow() async throws {
        let fixture = try StoreFixture()
        for index in 1...3 {
            _ = await fixture.ingest(candidate: "p\(index)", jobs: [("payroll", "c1:p\(index)", .rerun)], at: t0)
        }
        let poisoned = try await fixture.store.database.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(id) FROM jobs") } ?? 0
        try await fixture.store.database.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER poison BEFORE UPDATE OF state ON jobs WHEN NEW.id = \(poisoned) AND NEW.state = 'running'
                    BEGIN SELECT RAISE(ABORT, 'injected claim failure'); END
                    """)
        }
        let claim = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(claim.count == 2)
        #expect(!claim.map(\.id).contains(poisoned))
        #expect(claim.setAside.map(\.jobID) == [poisoned])
        #expect(claim.setAside.first?.reason.contains("injected claim failure") == true)
        #expect(try fixture.state(of: poisoned) == "set_aside")
        let reason = try fixture.store.database.read { db in
            try Row.fetchOne(db, sql: "SELECT hold_reason, last_error FROM jobs WHERE id = ?", arguments: [poisoned])
        }
        #expect(reason?["hold_reason"] as String? == "store_fault")
        // Reported once: the next claim does not see it again.
        let again = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(again.setAside.isEmpty)
        // An operator retries it once the fault is gone.
        try await fixture.store.database.write { db in try db.execute(sql: "DROP TRIGGER poison") }
        #expect(try await fixture.store.retry(jobIDs: [poisoned], now: t0) == 1)
        let retried = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(retried.map(\.id) == [poisoned])
    }

    /// When even setting it aside fails, this process leaves the job alone and
    /// still claims the others (reported once).
    @Test func aJobThatCannotEvenBeSetAsideIsSkipped() async throws {
        let fixture = try StoreFixture()
        for index in 1...2 {
            _ = await fixture.ingest(candidate: "q\(index)", jobs: [("payroll", "c1:q\(index)", .rerun)], at: t0)
        }
        let poisoned = try await fixture.store.database.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(id) FROM jobs") } ?? 0
        try await fixture.store.database.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER poison BEFORE UPDATE ON jobs WHEN NEW.id = \(poisoned)
                    BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                    """)
        }
        let claim = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(claim.count == 1)
        #expect(claim.setAside.map(\.jobID) == [poisoned])
        let again = try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(1)), limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(again.isEmpty)
        #expect(again.setAside.isEmpty)
    }

    /// Regression: a CSV re-send whose key was delivered was skipped by the
    /// ledger, so the corrected row never reached the (not yet written) file.
    @Test func aCSVJobWithADeliveredKeyIsStillRun() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "r1", jobs: [("hires-csv", "c1:r1", .rerun)], at: t0, kind: "csv")
        let first = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        let job = try #require(first.first)
        try await fixture.store.complete(jobID: job.id, owner: "A", completion: .done(capture: nil), now: t0)
        _ = await fixture.ingest(candidate: "r1", body: "corrected", jobs: [("hires-csv", "c1:r1", .rerun)], at: t0.adding(.seconds(1)), kind: "csv")
        let second = try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(1)), limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(second.count == 1)
        #expect(second.first?.id != job.id)
    }

    /// The claim and gauge queries keep their partial indexes: the states they
    /// render from `JobState` match the schema's index text.
    @Test func hotQueriesUseTheirPartialIndexes() throws {
        let fixture = try StoreFixture()
        let plans = try fixture.store.database.read { db -> [String] in
            let queries = [
                "SELECT id FROM jobs j WHERE j.state = \(SQL.literal(.pending)) AND j.run_at <= 0 AND j.deadline IS NULL ORDER BY j.run_at, j.id LIMIT 5",
                "SELECT lease_expires_at FROM jobs WHERE state = \(SQL.literal(.running)) ORDER BY lease_expires_at LIMIT 1",
                "SELECT 1 FROM jobs o WHERE o.mapping = 'm' AND o.effect_key = 'k' AND o.id < 5 AND o.state IN \(SQL.list(JobState.unfinished))",
                "SELECT state, COUNT(*) FROM jobs WHERE state IN \(SQL.list(JobState.gauged)) GROUP BY state",
            ]
            return try queries.map { sql in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
        }
        #expect(plans[0].contains("jobs_pending_due"), "\(plans[0])")
        #expect(plans[1].contains("jobs_running"), "\(plans[1])")
        #expect(plans[2].contains("jobs_effect_open"), "\(plans[2])")
        #expect(plans[3].contains("jobs_state"), "\(plans[3])")
    }
}

@Suite("Writer batches")
struct WriterBatchTests {
    /// Regression (review): when one webhook of a batch failed, only the webhooks
    /// up to it were replayed; those after it were never answered.
    @Test
    func everyWebhookOfABatchWithAFailureIsAnswered() async throws {
        let fixture = try StoreFixture()
        try await fixture.store.database.write { db in
            try db.execute(sql: "CREATE TRIGGER boom BEFORE INSERT ON inbox WHEN NEW.action = 'boom' BEGIN SELECT RAISE(ABORT, 'injected'); END")
        }
        // Answers are collected by a task of their own; an unanswered webhook
        // shows as a missing answer after the wait, never as a hung test.
        let answers = Answers()
        let store = fixture.store
        for index in 0..<60 {
            Task {
                let action = index % 10 == 5 ? "boom" : "new"
                let body = Array(
                    #"{"event_type":"candidate","action":"\#(action)","data":{"company":{"id":"c1"},"candidate":{"id":"b\#(index)"}}}"#.utf8)
                guard let envelope = try? WebhookEnvelope.read(body) else { return }
                let outcome = await store.ingest(
                    IngestItem(
                        body: body, receivedAt: Timestamp(seconds: 1),
                        content: .event(envelope, disposition: .unrouted, jobs: [], company: nil)))
                answers.list.withLock { $0.append(outcome) }
            }
        }
        for _ in 0..<200 where answers.list.withLock({ $0.count }) < 60 { try await Task.sleep(for: .milliseconds(50)) }
        let outcomes = answers.list.withLock { $0 }
        #expect(outcomes.count == 60)
        let stored = outcomes.filter { if case .stored = $0 { return true } else { return false } }
        #expect(stored.count == 54)
    }
}

/// Answers collected from detached tasks.
final class Answers: Sendable {
    let list = Mutex<[IngestOutcome]>([])
}
