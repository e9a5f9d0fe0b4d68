import Clocks
import Domain
import Foundation
import JSON
import Logging
import StoreSQLite
import Testing

/// What every store of the bridge must do, written against the store
/// protocols only (`EventStore`, `RoutingQueue`, `JobStore`, `OperatorJobStore`,
/// `RetentionStore`, `ErasureStore`, `RunningJobStore`): the SQLite store
/// runs it now, and a PostgreSQL store must pass it unchanged.
typealias ContractStore = EventStore & RoutingQueue & JobStore & OperatorJobStore & RetentionStore & ErasureStore & RunningJobStore

/// Makes a fresh, empty store of one implementation.
struct StoreFactory: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () throws -> any ContractStore
    var testDescription: String { name }

    static let all: [StoreFactory] = [
        StoreFactory(name: "SQLite") {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-contract-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return try SQLiteStore(directory: directory, logger: Logger(label: "contract"))
        }
    ]
}

@Suite("Store contract")
struct StoreContractTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    static func body(_ candidate: String, _ suffix: String = "") -> [UInt8] {
        Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"\#(candidate)"}},"n":"\#(suffix)"}"#.utf8)
    }

    static func job(
        _ mapping: String, key: String, crash: CrashPolicy = .rerun, state: JobState = .pending, hold: HoldReason? = nil,
        after: String? = nil, onRepeat: RepeatPolicy = .skip
    ) -> PlannedJob {
        PlannedJob(
            mapping: mapping, kind: "log", effectKey: key, payload: ["event": "candidate/new"], mappingHash: "h", crashPolicy: crash,
            initialState: state, holdReason: hold, onRepeat: onRepeat, after: after)
    }

    /// Stores an event and routes it with `jobs`, as the routing service does.
    @discardableResult
    static func deliver(_ store: any ContractStore, candidate: String, suffix: String = "", jobs: [PlannedJob], at time: Timestamp) async throws
        -> Int64
    {
        let body = body(candidate, suffix)
        let envelope = try WebhookEnvelope.read(body)
        guard
            case .stored(let id, _) = await store.ingest(
                IngestItem(
                    body: body, receivedAt: time,
                    content: .event(envelope, disposition: .routed, jobs: [], company: nil),
                    routeAfterCommit: true))
        else {
            throw ContractFailure("not stored")
        }
        _ = try await store.recordRouting([
            RoutedEvent(
                eventID: id, companyID: envelope.companyID, subjectID: envelope.subjectID,
                receivedAt: time, jobs: jobs)
        ])
        return id
    }

    struct ContractFailure: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    func claim(_ store: any ContractStore, at time: Timestamp, owner: String = "A") async throws -> JobClaim {
        try await store.claimDueJobs(owner: owner, now: time, limit: 10, leaseUntil: time.adding(.seconds(30)))
    }

    @Test(arguments: StoreFactory.all)
    func ingestIsDurableAndFiltersTransportRetries(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        let body = Self.body("p1")
        let item = IngestItem(
            body: body, receivedAt: t0, content: .event(try WebhookEnvelope.read(body), disposition: .routed, jobs: [], company: nil),
            routeAfterCommit: true)
        guard case .stored(let id, _) = await store.ingest(item) else {
            Issue.record("first delivery not stored")
            return
        }
        #expect(await store.ingest(item) == .duplicate(id: id))
        guard
            case .quarantined(_, false) = await store.ingest(
                IngestItem(body: Array("junk".utf8), receivedAt: t0, content: .quarantine(reason: "bad")))
        else {
            Issue.record("quarantine")
            return
        }
        #expect(await store.isAcceptingWrites())
    }

    @Test(arguments: StoreFactory.all)
    func routingIsExactlyOnce(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        let body = Self.body("p1")
        let envelope = try WebhookEnvelope.read(body)
        guard
            case .stored(let id, _) = await store.ingest(
                IngestItem(
                    body: body, receivedAt: t0, content: .event(envelope, disposition: .routed, jobs: [], company: nil),
                    routeAfterCommit: true))
        else {
            Issue.record("not stored")
            return
        }
        let waiting = try await store.unroutedEvents(limit: 10)
        #expect(waiting.map(\.id) == [id])
        #expect(waiting.first?.body == body)
        let routed = RoutedEvent(eventID: id, companyID: "c1", subjectID: "p1", receivedAt: t0, jobs: [Self.job("payroll", key: "c1:p1")])
        #expect(try await store.recordRouting([routed]) == 1)
        #expect(try await store.recordRouting([routed]) == 0, "routing again after a crash changes nothing")
        #expect(try await store.unroutedEvents(limit: 10).isEmpty)
        #expect(try await claim(store, at: t0).count == 1)
    }

    @Test(arguments: StoreFactory.all)
    func oneEntitysEffectsRunInOrderAndTheLedgerSkipsRepeats(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("payroll", key: "c1:p1")], at: t0)
        try await Self.deliver(store, candidate: "p1", suffix: "again", jobs: [Self.job("payroll", key: "c1:p1")], at: t0)
        try await Self.deliver(store, candidate: "p2", jobs: [Self.job("payroll", key: "c1:p2", onRepeat: .send)], at: t0)
        let first = try await claim(store, at: t0)
        #expect(first.map(\.effectKey).sorted() == ["c1:p1", "c1:p2"], "the second p1 waits for the first")
        for job in first { try await store.complete(jobID: job.id, owner: "A", completion: .done(capture: nil), now: t0) }
        #expect(try await claim(store, at: t0).isEmpty, "the repeat of a delivered effect is skipped, not run")
    }

    @Test(arguments: StoreFactory.all)
    func leasesRerunIdempotentJobsAndParkTheRestInDoubt(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(
            store, candidate: "p1", jobs: [Self.job("safe", key: "k1", crash: .rerun), Self.job("unsafe", key: "k2", crash: .hold)], at: t0)
        #expect(try await claim(store, at: t0, owner: "dead").count == 2)
        #expect(try await claim(store, at: t0.adding(.seconds(10))).isEmpty, "leased jobs are not claimed twice")
        let afterExpiry = try await claim(store, at: t0.adding(.seconds(31)))
        #expect(afterExpiry.map(\.mapping) == ["safe"])
        #expect(afterExpiry.first?.attempt == 2)
        // The dead runner's late outcome is ignored: another runner owns the job now.
        try await store.complete(jobID: afterExpiry[0].id, owner: "dead", completion: .dead(reason: "late"), now: t0.adding(.seconds(32)))
        try await store.complete(jobID: afterExpiry[0].id, owner: "A", completion: .done(capture: nil), now: t0.adding(.seconds(32)))
        #expect(try await claim(store, at: t0.adding(.seconds(3600))).isEmpty, "the in-doubt job waits for an operator")
    }

    @Test(arguments: StoreFactory.all)
    func retriesComeDueAndFinalStatesStayFinal(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("a", key: "k1"), Self.job("b", key: "k2"), Self.job("c", key: "k3")], at: t0)
        let jobs = try await claim(store, at: t0)
        let byMapping = Dictionary(uniqueKeysWithValues: jobs.map { ($0.mapping, $0) })
        try await store.complete(
            jobID: try #require(byMapping["a"]).id, owner: "A", completion: .retry(at: t0.adding(.seconds(60)), reason: "503"), now: t0)
        try await store.complete(jobID: try #require(byMapping["b"]).id, owner: "A", completion: .expired(reason: "deadline"), now: t0)
        try await store.setAside(jobID: try #require(byMapping["c"]).id, owner: "A", reason: "cannot record", now: t0)
        #expect(try await claim(store, at: t0.adding(.seconds(59))).isEmpty)
        let due = try await claim(store, at: t0.adding(.seconds(60)))
        #expect(due.map(\.mapping) == ["a"])
        #expect(due.first?.attempt == 2)
        #expect(try await store.nextWakeUp(after: t0.adding(.seconds(60))) != nil, "the running job's lease")
    }

    @Test(arguments: StoreFactory.all)
    func aHeldAfterJobIsReleasedWithTheCaptureOfTheJobItWaitsFor(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(
            store, candidate: "p1",
            jobs: [
                Self.job("payroll", key: "c1:p1"),
                Self.job("card", key: "c1:p1", state: .held, hold: .waitingFor(mapping: "payroll"), after: "payroll"),
            ], at: t0)
        let first = try await claim(store, at: t0)
        #expect(first.map(\.mapping) == ["payroll"])
        try await store.complete(jobID: first[0].id, owner: "A", completion: .done(capture: ["employee_id": "E-1"]), now: t0)
        let released = try await claim(store, at: t0)
        #expect(released.map(\.mapping) == ["card"])
        #expect(released.first.flatMap { $0.afterCapture }.flatMap { try? JSONParser.parse($0) }?["employee_id"] == "E-1")
    }

    @Test(arguments: StoreFactory.all)
    func anInDoubtJobResolvedWithACaptureHandsItToTheJobsAfterIt(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(
            store, candidate: "p1",
            jobs: [
                Self.job("payroll", key: "c1:p1", crash: .hold),
                Self.job("card", key: "c1:p1", state: .held, hold: .waitingFor(mapping: "payroll"), after: "payroll"),
            ], at: t0)
        let payroll = try #require(try await claim(store, at: t0, owner: "dead").first)
        #expect(try await claim(store, at: t0.adding(.seconds(31))).isEmpty, "in doubt: neither job runs")
        try await store.resolve(jobID: payroll.id, delivered: true, capture: ["employee_id": "E-9"], now: t0.adding(.seconds(40)))
        let released = try await claim(store, at: t0.adding(.seconds(40)))
        #expect(released.map(\.mapping) == ["card"])
        #expect(released.first.flatMap { $0.afterCapture }.flatMap { try? JSONParser.parse($0) }?["employee_id"] == "E-9")
    }

    @Test(arguments: StoreFactory.all)
    func jobsAfterADeadJobWaitUntilItIsRetriedAndSucceeds(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(
            store, candidate: "p1",
            jobs: [
                Self.job("payroll", key: "c1:p1"),
                Self.job("card", key: "c1:p1", state: .held, hold: .waitingFor(mapping: "payroll"), after: "payroll"),
            ], at: t0)
        let payroll = try #require(try await claim(store, at: t0).first)
        try await store.complete(jobID: payroll.id, owner: "A", completion: .dead(reason: "HTTP 400"), now: t0)
        let cardID = payroll.id + 1
        // Retrying the waiting job does not skip the wait: it is held again, not counted.
        #expect(try await store.retry(jobIDs: [cardID], now: t0) == 0)
        #expect(try await claim(store, at: t0.adding(.seconds(1))).isEmpty)
        #expect(try await store.retry(jobIDs: [payroll.id], now: t0.adding(.seconds(2))) == 1)
        let again = try await claim(store, at: t0.adding(.seconds(2)))
        #expect(again.map(\.mapping) == ["payroll"])
        try await store.complete(jobID: payroll.id, owner: "A", completion: .done(capture: ["employee_id": "E-2"]), now: t0.adding(.seconds(3)))
        let card = try await claim(store, at: t0.adding(.seconds(3)))
        #expect(card.map(\.id) == [cardID])
        #expect(card.first.flatMap { $0.afterCapture }.flatMap { try? JSONParser.parse($0) }?["employee_id"] == "E-2")
    }

    @Test(arguments: StoreFactory.all)
    func cancellingAJobCancelsTheChainWaitingForIt(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(
            store, candidate: "p1",
            jobs: [
                Self.job("payroll", key: "c1:p1"),
                Self.job("card", key: "c1:p1", state: .held, hold: .waitingFor(mapping: "payroll"), after: "payroll"),
                Self.job("audit", key: "c1:p1", state: .held, hold: .waitingFor(mapping: "card"), after: "card"),
            ], at: t0)
        let payroll = try #require(try await claim(store, at: t0).first)
        try await store.complete(jobID: payroll.id, owner: "A", completion: .dead(reason: "HTTP 400"), now: t0)
        try await store.cancel(jobID: payroll.id, now: t0)
        // Retried once cancelled, the payroll job runs and succeeds, but nothing waits for it any more.
        #expect(try await store.retry(jobIDs: [payroll.id], now: t0) == 1)
        let again = try #require(try await claim(store, at: t0).first)
        try await store.complete(jobID: again.id, owner: "A", completion: .done(capture: nil), now: t0)
        #expect(try await claim(store, at: t0.adding(.seconds(60))).isEmpty, "card and audit were cancelled with payroll")
        await #expect(throws: (any Error).self, "a cancelled job is not cancelled twice") { try await store.cancel(jobID: payroll.id + 2, now: t0) }
    }

    static func flowJob(key: String, crash: CrashPolicy = .rerun) -> PlannedJob {
        var job = PlannedJob(mapping: "hire", kind: "flow", effectKey: key, payload: ["flow": "hire"], mappingHash: "v1", crashPolicy: crash)
        job.mappingSource = Array(#"{"name": "hire"}"#.utf8)
        return job
    }

    @Test(arguments: StoreFactory.all)
    func aFlowsCheckpointsAreKeptUnderItsLeaseAndItsVersionIsStored(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.flowJob(key: "c1:p1")], at: t0)
        let job = try #require(try await claim(store, at: t0, owner: "A").first)
        #expect(job.eventBody != nil, "a flow renders its steps from the event")
        #expect(job.mappingHash == "v1" && job.leaseOwner == "A" && job.flowProgress == nil)
        #expect(try await store.mappingSource(contentHash: "v1") == Array(#"{"name": "hire"}"#.utf8))
        #expect(try await store.mappingSource(contentHash: "v2") == nil)
        var progress = FlowProgress(next: "create_person")
        progress.steps = [
            .init(name: "find_manager", outcome: .succeeded, status: 200, captures: (["m": "M-7"] as JSONValue).objectValue ?? JSONObject(), at: 1)
        ]
        #expect(try await store.checkpointFlow(jobID: job.id, owner: "A", attempt: 1, progress: progress, crashPolicy: .hold, now: t0))
        #expect(try await !store.checkpointFlow(jobID: job.id, owner: "B", attempt: 1, progress: FlowProgress(), crashPolicy: .rerun, now: t0))
        #expect(
            try await !store.checkpointFlow(jobID: job.id, owner: "A", attempt: 2, progress: FlowProgress(), crashPolicy: .rerun, now: t0),
            "an older claim of the same runner")
        // The runner dies during create_person: its policy (hold) applies, not the one the flow was planned with.
        #expect(try await claim(store, at: t0.adding(.seconds(31))).isEmpty, "in doubt")
        try await store.resolve(jobID: job.id, delivered: true, capture: ["person_id": "P-9"], now: t0.adding(.seconds(40)))
        let resumed = try #require(try await claim(store, at: t0.adding(.seconds(40))).first)
        let after = FlowProgress(stored: resumed.flowProgress)
        #expect(after.steps.map(\.name) == ["find_manager", "create_person"])
        #expect(after.steps.last?.outcome == .resolvedByOperator)
        #expect(after.steps.last?.captures["person_id"] == "P-9")
        #expect(after.next == nil)
        try await store.complete(jobID: resumed.id, owner: "A", completion: .done(capture: nil), now: t0.adding(.seconds(41)))
    }

    @Test(arguments: StoreFactory.all)
    func aRetriedFlowKeepsItsStepsAndForgetsItsFailure(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.flowJob(key: "c1:p1")], at: t0)
        let job = try #require(try await claim(store, at: t0).first)
        var progress = FlowProgress(
            steps: [.init(name: "create_person", outcome: .succeeded, at: 1)], next: "create_employee",
            failure: .init(step: "create_employee", reason: "HTTP 400", noticeSent: true))
        #expect(try await store.checkpointFlow(jobID: job.id, owner: "A", attempt: 1, progress: progress, crashPolicy: .hold, now: t0))
        try await store.complete(jobID: job.id, owner: "A", completion: .dead(reason: "HTTP 400"), now: t0)
        #expect(try await store.retry(jobIDs: [job.id], now: t0) == 1)
        let again = try #require(try await claim(store, at: t0).first)
        progress.failure = nil
        #expect(FlowProgress(stored: again.flowProgress) == progress)
    }

    @Test(arguments: StoreFactory.all)
    func retentionKeepsWhichStepsOfAFlowEndedButNotWhatTheyCaptured(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.flowJob(key: "c1:p1")], at: t0)
        let job = try #require(try await claim(store, at: t0).first)
        let progress = FlowProgress(
            steps: [
                .init(name: "create_person", outcome: .succeeded, captures: (["person_id": "P-1"] as JSONValue).objectValue ?? JSONObject(), at: 1)
            ],
            next: "create_employee")
        #expect(try await store.checkpointFlow(jobID: job.id, owner: "A", attempt: 1, progress: progress, crashPolicy: .hold, now: t0))
        try await store.complete(jobID: job.id, owner: "A", completion: .dead(reason: "HTTP 400"), now: t0)
        _ = try await store.purgeExpiredBodies(now: t0.adding(.seconds(40 * 86_400)), policy: RetentionPolicy())
        #expect(try await store.retry(jobIDs: [job.id], now: t0.adding(.seconds(40 * 86_400))) == 1)
        let again = try #require(try await claim(store, at: t0.adding(.seconds(40 * 86_400))).first)
        let kept = FlowProgress(stored: again.flowProgress)
        #expect(kept.hasEnded("create_person"), "a retry after retention never creates the person again")
        #expect(kept.steps.first?.captures.isEmpty == true)
        #expect(kept.next == "create_employee")
    }

    @Test(arguments: StoreFactory.all)
    func aGracefulStopGivesUnfinishedAttemptsBackUncounted(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("payroll", key: "k")], at: t0)
        #expect(try await claim(store, at: t0).first?.attempt == 1)
        try await store.releaseLeases(owner: "A", now: t0)
        #expect(try await claim(store, at: t0, owner: "B").first?.attempt == 1)
    }

    @Test(arguments: StoreFactory.all)
    func operatorCommandsFollowTheTransitions(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("a", key: "k1"), Self.job("b", key: "k2", crash: .hold)], at: t0)
        let jobs = try await claim(store, at: t0, owner: "dead")
        let a = try #require(jobs.first { $0.mapping == "a" })
        let b = try #require(jobs.first { $0.mapping == "b" })
        await #expect(throws: (any Error).self, "a running job finishes first") { try await store.cancel(jobID: a.id, now: t0) }
        try await store.complete(jobID: a.id, owner: "dead", completion: .dead(reason: "400"), now: t0)
        #expect(try await store.retry(jobIDs: [a.id], now: t0) == 1)
        await #expect(throws: (any Error).self, "a pending job cannot be resolved") { try await store.resolve(jobID: a.id, delivered: true, now: t0) }
        // b's runner dies: in doubt; the operator says it was delivered.
        _ = try await claim(store, at: t0.adding(.seconds(31)))
        try await store.resolve(jobID: b.id, delivered: true, now: t0.adding(.seconds(31)))
        try await Self.deliver(store, candidate: "p1", suffix: "again", jobs: [Self.job("b", key: "k2")], at: t0.adding(.seconds(40)))
        let later = try await claim(store, at: t0.adding(.seconds(3600)), owner: "B")
        #expect(!later.contains { $0.mapping == "b" }, "an effect an operator marked delivered is in the ledger")
        #expect(later.contains { $0.mapping == "a" }, "the retried job runs again")
    }

    @Test(arguments: StoreFactory.all)
    func retentionPurgesBodiesButKeepsTheirHashes(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("a", key: "k1")], at: t0)
        let job = try #require(try await claim(store, at: t0).first)
        try await store.complete(jobID: job.id, owner: "A", completion: .done(capture: nil), now: t0)
        let day: Int64 = 86_400_000
        #expect(try await store.purgeExpiredBodies(now: t0.adding(milliseconds: 29 * day), policy: RetentionPolicy()).inbox == 0)
        #expect(try await store.purgeExpiredBodies(now: t0.adding(milliseconds: 31 * day), policy: RetentionPolicy()).inbox == 1)
        let body = Self.body("p1")
        let again = await store.ingest(
            IngestItem(
                body: body, receivedAt: t0.adding(milliseconds: 31 * day),
                content: .event(try WebhookEnvelope.read(body), disposition: .routed, jobs: [], company: nil)))
        guard case .duplicate = again else {
            Issue.record("a purged body's late retry must still be a duplicate, got \(again)")
            return
        }
    }

    @Test(arguments: StoreFactory.all)
    func erasureCancelsOpenJobsAndKeepsTheLedger(_ factory: StoreFactory) async throws {
        let store = try factory.make()
        try await Self.deliver(store, candidate: "p1", jobs: [Self.job("payroll", key: "c1:p1")], at: t0)
        let delivered = try #require(try await claim(store, at: t0).first)
        try await store.complete(jobID: delivered.id, owner: "A", completion: .done(capture: nil), now: t0)
        try await Self.deliver(store, candidate: "p1", suffix: "2", jobs: [Self.job("card", key: "c1:p1")], at: t0)
        let dry = try store.erase(candidateID: "p1", companyID: nil, now: t0, dryRun: true)
        #expect(dry.events == 2)
        let report = try store.erase(candidateID: "p1", companyID: nil, now: t0, dryRun: false)
        #expect(report.events == 2)
        #expect(report.jobsCancelled == 1)
        #expect(try await claim(store, at: t0).isEmpty, "nothing is sent after an erasure")
        // A re-send after the erasure cannot pay twice: the ledger kept the key.
        try await Self.deliver(store, candidate: "p1", suffix: "3", jobs: [Self.job("payroll", key: "c1:p1")], at: t0)
        #expect(try await claim(store, at: t0).isEmpty)
    }
}
