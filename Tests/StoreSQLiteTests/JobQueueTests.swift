import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Logging
import Testing

@testable import StoreSQLite

/// A real store in a temporary directory, with helpers to ingest events.
struct StoreFixture {
    let directory: String
    let store: SQLiteStore
    var counter = 0

    init(options: SQLiteStoreOptions = SQLiteStoreOptions()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(directory: directory, options: options, logger: Logger(label: "test"))
    }

    /// Ingests a candidate event with one job per `(mapping, effect key, policy)`.
    func ingest(
        candidate: String, body suffix: String = "", jobs: [(String, String, CrashPolicy)], at time: Timestamp,
        onRepeat: RepeatPolicy = .skip, kind: String = "log"
    ) async -> IngestOutcome {
        let body = Array(
            #"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"\#(candidate)"}},"n":"\#(suffix)"}"#.utf8)
        let envelope = try? WebhookEnvelope.read(body)
        guard let envelope else { return .unavailable(reason: "bad test body") }
        let planned = jobs.map {
            PlannedJob(
                mapping: $0.0, kind: kind, effectKey: $0.1, payload: ["event": "candidate/new"], mappingHash: "h", crashPolicy: $0.2,
                onRepeat: onRepeat)
        }
        return await store.ingest(
            IngestItem(body: body, receivedAt: time, content: .event(envelope, disposition: .routed, jobs: planned, company: nil)))
    }

    func state(of job: Int64) throws -> String? {
        try store.database.read { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [job]) }
    }
}

@Suite("SQLite job queue and effect ledger")
struct JobQueueTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    @Test func pragmasAreSetOnTheStoresConnection() throws {
        let fixture = try StoreFixture()
        let values = try fixture.store.database.read { db in
            (
                try Int.fetchOne(db, sql: "PRAGMA secure_delete"), try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint")
            )
        }
        #expect(values.0 == 1)
        #expect(values.1 == 2)  // FULL
        #expect(values.2 == "wal")
        #expect(values.3 == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: fixture.store.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func claimRunDoneWritesTheLedgerAndARepeatIsSkipped() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(claimed.map(\.attempt) == [1])
        let job = try #require(claimed.first)
        try await fixture.store.complete(jobID: job.id, owner: "A", completion: .done(capture: ["employee_id": "E1"]), now: t0)
        #expect(try fixture.state(of: job.id) == "done")

        // A hand re-send: different body, same entity.
        _ = await fixture.ingest(candidate: "p1", body: "again", jobs: [("payroll", "c1:p1", .rerun)], at: t0.adding(.seconds(1)))
        let second = try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(1)), limit: 10, leaseUntil: t0.adding(.seconds(31)))
        #expect(second.isEmpty)
        let skipped = try fixture.store.jobs(state: "skipped")
        #expect(skipped.count == 1)
        #expect(skipped.first?.skippedFor == job.id)
        // Another mapping with the same entity is a different effect.
        _ = await fixture.ingest(candidate: "p1", body: "csv", jobs: [("csv", "c1:p1", .rerun)], at: t0.adding(.seconds(2)))
        #expect(
            try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(2)), limit: 10, leaseUntil: t0.adding(.seconds(32))).count == 1)
    }

    @Test func onRepeatSendAndAlternativeMappings() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        let first = try #require(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30))).first)
        try await fixture.store.complete(jobID: first.id, owner: "A", completion: .done(capture: nil), now: t0)
        // send: delivered again.
        _ = await fixture.ingest(candidate: "p1", body: "2", jobs: [("payroll", "c1:p1", .rerun)], at: t0, onRepeat: .send)
        let resent = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30)))
        #expect(resent.map(\.mapping) == ["payroll"])
        try await fixture.store.complete(jobID: resent[0].id, owner: "A", completion: .done(capture: nil), now: t0)
        // alternative: the update mapping's rendering runs instead.
        let alternative = RepeatPolicy.alternative(mapping: "payroll-update", kind: "rest", payload: ["op": "update"], mappingHash: "h2")
        _ = await fixture.ingest(candidate: "p1", body: "3", jobs: [("payroll", "c1:p1", .rerun)], at: t0, onRepeat: alternative)
        let switched = try #require(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30))).first)
        #expect(switched.mapping == "payroll-update")
        #expect(switched.kind == "rest")
        #expect(switched.payload == Array(#"{"op":"update"}"#.utf8))
        // skip (default) still skips.
        try await fixture.store.complete(jobID: switched.id, owner: "A", completion: .done(capture: nil), now: t0)
        _ = await fixture.ingest(candidate: "p1", body: "4", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        #expect(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30))).isEmpty)
        #expect(try fixture.store.jobs(state: "skipped").count == 1)
    }

    /// Regression: the runner asked for the next wake-up after an empty claim,
    /// got the blocked job's due time (now) and claimed again at once, forever.
    @Test func aDueJobThatCannotBeClaimedDoesNotWakeTheRunnerAgain() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", body: "1", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        let first = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30)))
        let held = try #require(first.jobs.first)
        try await fixture.store.complete(jobID: held.id, owner: "A", completion: .held(.missingVariables(["PAYROLL_URL"])), now: t0)
        // A re-send: due now, but it waits for the held job of its entity.
        _ = await fixture.ingest(candidate: "p1", body: "2", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        #expect(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30))).isEmpty)
        #expect(try await fixture.store.nextWakeUp(after: t0) == nil)
        #expect(try await fixture.store.nextWakeUp(after: t0.adding(.milliseconds(-1))) == t0, "due jobs count until the claim")
    }

    /// A runner woken by a commit that gave its lane nothing writes nothing:
    /// `mayHaveWork` answers from the reader, per lane, counting due jobs and
    /// run-out leases only.
    @Test func mayHaveWorkSeesDueJobsOfTheLaneAndRunOutLeasesOnly() async throws {
        let fixture = try StoreFixture()
        #expect(try await fixture.store.mayHaveWork(lane: .dueTime, now: t0) == false)
        _ = await fixture.ingest(candidate: "p1", jobs: [("payroll", "c1:p1", .rerun)], at: t0)
        #expect(try await fixture.store.mayHaveWork(lane: .dueTime, now: t0.adding(.milliseconds(-1))) == false, "not due yet")
        #expect(try await fixture.store.mayHaveWork(lane: .dueTime, now: t0))
        #expect(try await fixture.store.mayHaveWork(lane: .earliestDeadline, now: t0) == false, "another lane's job")
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 5, leaseUntil: t0.adding(.seconds(30)))
        #expect(claimed.count == 1)
        #expect(try await fixture.store.mayHaveWork(lane: .dueTime, now: t0.adding(.seconds(29))) == false, "running under a live lease")
        #expect(try await fixture.store.mayHaveWork(lane: .earliestDeadline, now: t0.adding(.seconds(30))), "a run-out lease is work for any lane")
    }

    @Test func anExpiredLeaseIsReclaimedOrParkedInDoubtByPolicy() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("safe", "k1", .rerun), ("unsafe", "k2", .hold)], at: t0)
        let first = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(first.count == 2)
        // Runner A dies. Before the lease runs out nothing is claimable.
        #expect(
            try await fixture.store.claimDueJobs(owner: "B", now: t0.adding(.seconds(29)), limit: 10, leaseUntil: t0.adding(.seconds(59))).isEmpty)
        #expect(try await fixture.store.nextWakeUp(after: t0.adding(.seconds(29))) == t0.adding(.seconds(30)))
        let later = t0.adding(.seconds(31))
        let reclaimed = try await fixture.store.claimDueJobs(owner: "B", now: later, limit: 10, leaseUntil: later.adding(.seconds(30)))
        #expect(reclaimed.map(\.mapping) == ["safe"])
        #expect(reclaimed.first?.attempt == 2)
        #expect(try fixture.store.jobs(state: "in_doubt").map(\.mapping) == ["unsafe"])
        // A's late completion is ignored: B owns the attempt now.
        try await fixture.store.complete(jobID: reclaimed[0].id, owner: "A", completion: .dead(reason: "late"), now: later)
        #expect(try fixture.state(of: reclaimed[0].id) == "running")
        try await fixture.store.complete(jobID: reclaimed[0].id, owner: "B", completion: .done(capture: nil), now: later)
        #expect(try fixture.state(of: reclaimed[0].id) == "done")
    }

    @Test func startUpRecoveryAppliesTheCrashPolicyAtOnce() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("safe", "k1", .rerun), ("unsafe", "k2", .hold)], at: t0)
        _ = try await fixture.store.claimDueJobs(owner: "dead", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        let recovered = try await fixture.store.recoverJobsOfDeadRunners(now: t0.adding(.seconds(1)))
        #expect(recovered.requeued == 1)
        #expect(recovered.inDoubt == 1)
        #expect(try fixture.store.jobs(state: "pending").map(\.mapping) == ["safe"])
        #expect(try fixture.store.jobs(state: "in_doubt").map(\.mapping) == ["unsafe"])
    }

    @Test func renewedLeasesAreNotReclaimed() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("m", "k", .rerun)], at: t0)
        let job = try #require(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30))).first)
        try await fixture.store.renewLeases(jobIDs: [job.id], owner: "A", until: t0.adding(.seconds(60)))
        #expect(try await fixture.store.claimDueJobs(owner: "B", now: t0.adding(.seconds(45)), limit: 1, leaseUntil: t0.adding(.seconds(75))).isEmpty)
    }

    @Test func retriesWaitForTheirTimeAndOneEntityRunsInOrder() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("m", "c1:p1", .rerun)], at: t0)
        _ = await fixture.ingest(candidate: "p1", body: "2", jobs: [("m", "c1:p1", .rerun)], at: t0)
        _ = await fixture.ingest(candidate: "p2", jobs: [("m", "c1:p2", .rerun)], at: t0)
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        // The second job of p1 waits behind the first.
        #expect(claimed.map(\.effectKey) == ["c1:p1", "c1:p2"])
        let p1 = claimed[0]
        try await fixture.store.complete(
            jobID: p1.id, owner: "A", completion: .retry(at: t0.adding(.seconds(5)), reason: "503 from payroll"), now: t0)
        #expect(try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(4)), limit: 10, leaseUntil: t0.adding(.seconds(34))).isEmpty)
        let retried = try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(5)), limit: 10, leaseUntil: t0.adding(.seconds(35)))
        #expect(retried.map(\.id) == [p1.id])
        #expect(retried.first?.attempt == 2)
        let attempts = try fixture.store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT attempt, outcome, detail FROM job_attempts WHERE job_id = ?", arguments: [p1.id])
        }
        #expect(attempts.map { $0["outcome"] as String } == ["retry"])
        #expect(attempts.first?["detail"] as String? == "503 from payroll")
    }

    @Test func releasedLeasesGoBackToPendingWithoutCountingTheAttempt() async throws {
        let fixture = try StoreFixture()
        _ = await fixture.ingest(candidate: "p1", jobs: [("m", "k", .hold)], at: t0)
        let job = try #require(try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30))).first)
        try await fixture.store.releaseLeases(owner: "A", now: t0)
        #expect(try fixture.state(of: job.id) == "pending")
        let again = try await fixture.store.claimDueJobs(owner: "B", now: t0, limit: 1, leaseUntil: t0.adding(.seconds(30)))
        #expect(again.first?.attempt == 1)
    }

    @Test func concurrentIngestsShareCommitsAndAllLand() async throws {
        let fixture = try StoreFixture()
        let outcomes = await withTaskGroup(of: IngestOutcome.self) { group in
            for n in 0..<500 {
                group.addTask { await fixture.ingest(candidate: "p\(n)", jobs: [("m", "c1:p\(n)", .rerun)], at: self.t0) }
            }
            return await group.reduce(into: [IngestOutcome]()) { $0.append($1) }
        }
        let stored = outcomes.compactMap { if case .stored(let id, let jobs) = $0, jobs == 1 { return id } else { return nil } }
        #expect(stored.count == 500)
        #expect(try fixture.store.countRows("inbox") == 500)
        #expect(try fixture.store.countRows("jobs") == 500)
    }

    @Test func aFullDatabaseRefusesWithoutLosingEarlierRows() async throws {
        var options = SQLiteStoreOptions()
        options.maxPageCount = 48  // the schema alone takes ~40 pages
        let fixture = try StoreFixture(options: options)
        var stored = 0
        var refused = false
        for n in 0..<2000 {
            switch await fixture.ingest(candidate: "p\(n)-" + String(repeating: "x", count: 800), jobs: [], at: t0) {
            case .stored: stored += 1
            case .unavailable: refused = true
            default: break
            }
            if refused { break }
        }
        #expect(refused)
        #expect(stored > 0)
        #expect(try fixture.store.countRows("inbox") == stored)
        #expect(await fixture.store.isAcceptingWrites() == false)
    }

    /// Routes one event of `candidate` with `jobs` (as the routing service does), routed at `t0` + 1 s.
    func route(_ fixture: StoreFixture, candidate: String, suffix: String = "", jobs: [PlannedJob]) async throws {
        let body = Array(
            #"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"\#(candidate)"}},"n":"\#(suffix)"}"#.utf8)
        let envelope = try WebhookEnvelope.read(body)
        guard
            case .stored(let id, _) = await fixture.store.ingest(
                IngestItem(
                    body: body, receivedAt: t0, content: .event(envelope, disposition: .routed, jobs: [], company: nil), routeAfterCommit: true))
        else {
            Issue.record("not stored")
            return
        }
        _ = try await fixture.store.recordRouting([
            RoutedEvent(eventID: id, companyID: "c1", subjectID: candidate, receivedAt: t0, jobs: jobs, routedAt: t0.adding(.seconds(1)))
        ])
    }

    func csvJob(_ candidate: String, staged: Bool = true, after: String? = nil) -> PlannedJob {
        var job = PlannedJob(
            mapping: "nightly", kind: "csv", effectKey: "c1:\(candidate)", payload: ["row_key": .string("c1:\(candidate)")], mappingHash: "h",
            crashPolicy: .rerun, after: after)
        if staged {
            let period = CSVPeriod(start: t0.milliseconds / 1000 - 3600, end: t0.milliseconds / 1000 + 3600)
            job.stagedAtCreation = RowStaging(
                mapping: "nightly", period: period, openPeriod: period, rowKey: "c1:\(candidate)", receivedAt: t0,
                row: ["name": .string("row of \(candidate)")], policy: .skip)
        }
        return job
    }

    @Test func aRowStagedAtCreationEndsItsJobInTheRoutingWrite() async throws {
        let fixture = try StoreFixture()
        let card = PlannedJob(
            mapping: "card", kind: "log", effectKey: "c1:p1", payload: ["event": "candidate/new"], mappingHash: "h", crashPolicy: .rerun,
            initialState: .held, holdReason: .waitingFor(mapping: "nightly"), after: "nightly")
        try await route(fixture, candidate: "p1", jobs: [card, csvJob("p1")])
        let jobs = try await fixture.store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT mapping, state, attempts, lease_owner, first_attempt_at, updated_at FROM jobs ORDER BY id")
        }
        #expect(jobs.map { $0["mapping"] as String } == ["card", "nightly"])
        #expect(jobs.map { $0["state"] as String } == ["pending", "done"], "the row is staged, its job done, and what waited for it released")
        #expect(jobs[1]["attempts"] as Int == 1)
        #expect(jobs[1]["lease_owner"] as String? == nil)
        #expect(jobs[1]["updated_at"] as Int64 == t0.adding(.seconds(1)).milliseconds)
        var rows: [String] = []
        try fixture.store.forEachCSVRow(mapping: "nightly", periodStart: t0.milliseconds / 1000 - 3600) { key, _ in rows.append(key) }
        #expect(rows == ["c1:p1"])
        #expect(try fixture.store.countRows("job_attempts") == 1)
        #expect(try fixture.store.countRows("effects") == 1)
        let claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0.adding(.seconds(2)), limit: 10, leaseUntil: t0.adding(.seconds(60)))
        #expect(claimed.jobs.map(\.mapping) == ["card"], "only the released job is left to claim")
    }

    @Test func aRowWaitsItsTurnBehindAnUnfinishedJobOfItsKey() async throws {
        let fixture = try StoreFixture()
        try await route(fixture, candidate: "p2", jobs: [csvJob("p2", staged: false)])
        try await route(fixture, candidate: "p2", suffix: "re-sent", jobs: [csvJob("p2")])
        let states = try await fixture.store.database.read { db in try String.fetchAll(db, sql: "SELECT state FROM jobs ORDER BY id") }
        #expect(states == ["pending", "pending"], "the later row is not staged before the earlier one")
        var rows = 0
        try fixture.store.forEachCSVRow(mapping: "nightly", periodStart: t0.milliseconds / 1000 - 3600) { _, _ in rows += 1 }
        #expect(rows == 0)
    }
}
