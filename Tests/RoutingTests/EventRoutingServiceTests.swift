import Foundation
import GRDB
import JSON
import Logging
import Synchronization
import Testing

@testable import Clocks
@testable import Domain
@testable import Routing
@testable import StoreSQLite
@testable import TestSupport

/// Counts how often it routed each event, to prove routing happens once.
final class CountingRouter: EventRouter, @unchecked Sendable {
    let lock = NSLock()
    var routed: [Int64] = []

    func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
        lock.withLock { routed.append(eventID ?? -1) }
        return AuditLogRouter().route(envelope, body: body, receivedAt: receivedAt, eventID: eventID)
    }
}

@Suite("Routing acknowledged events after their commit")
struct EventRoutingServiceTests {
    /// Plans one archive job per event whose deadline (1 s) is long past at receipt.
    struct ExpiredArchiveRouter: EventRouter {
        func route(_ envelope: WebhookEnvelope, body: [UInt8], receivedAt: Timestamp, eventID: Int64?) -> [PlannedJob] {
            [
                PlannedJob(
                    mapping: "archive", item: "cv", kind: "archive", effectKey: envelope.subjectID ?? "-", payload: ["url": "https://f.example/cv"],
                    mappingHash: "h", crashPolicy: .rerun, deadline: Timestamp(seconds: 1)
                ).endingAtCreation(receivedAt: receivedAt)
            ]
        }
    }

    @Test func jobsCreatedExpiredAreReportedAfterTheirCommitAndNeverClaimed() async throws {
        let store = try TestStores.makeSQLiteStore()
        guard case .stored(let id, _) = await Self.ingest(store, candidate: "p1") else {
            Issue.record("not stored")
            return
        }
        let reported = Mutex<[(String, Int64, Int)]>([])
        let service = EventRoutingService(
            queue: store, router: ExpiredArchiveRouter(), logger: Logger(label: "test"),
            endedAtCreation: { job, logger in
                let eventID = logger[metadataKey: "event"].flatMap { Int64("\($0)") } ?? -1
                let committed =
                    (try? store.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'expired'") }) ?? 0
                reported.withLock { $0.append((job.item, eventID, committed)) }
            })
        #expect(await service.routeOnce() == 1)
        let seen = reported.withLock { $0 }
        #expect(seen.map(\.0) == ["cv"] && seen.map(\.1) == [id])
        #expect(seen.first?.2 == 1, "reported after the commit that created it")
        let row = try #require(try store.database.read { db in try Row.fetchOne(db, sql: "SELECT state, attempts, last_error FROM jobs") })
        #expect(row["state"] as String == "expired" && row["attempts"] as Int == 0)
        #expect((row["last_error"] as String).hasSuffix("before the webhook arrived (not requested)"))
        let claim = try await store.claimDueJobs(
            owner: "t", now: Timestamp(seconds: 1_900_000_000), limit: 10, leaseUntil: Timestamp(seconds: 1_900_000_030), lane: .earliestDeadline)
        #expect(claim.jobs.isEmpty, "nothing to claim")
    }

    static func ingest(_ store: SQLiteStore, candidate: String) async -> IngestOutcome {
        let body = Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"\#(candidate)"}}}"#.utf8)
        guard let envelope = try? WebhookEnvelope.read(body) else { return .unavailable(reason: "test") }
        return await store.ingest(
            IngestItem(
                body: body, receivedAt: Timestamp(seconds: 1_800_000_000),
                content: .event(envelope, disposition: .routed, jobs: [], company: nil), routeAfterCommit: true))
    }

    @Test func eventsAreRoutedOnceInArrivalOrderWithTheirStoredIDs() async throws {
        let store = try TestStores.makeSQLiteStore()
        var ids: [Int64] = []
        for candidate in ["p1", "p2", "p3"] {
            guard case .stored(let id, let jobs) = await Self.ingest(store, candidate: candidate) else {
                Issue.record("not stored")
                return
            }
            #expect(jobs == 0, "the acknowledging commit creates no jobs")
            ids.append(id)
        }
        #expect(await Self.ingest(store, candidate: "p1") == .duplicate(id: ids[0]))
        #expect(try await store.unroutedEvents(limit: 10).map(\.id) == ids)

        let router = CountingRouter()
        let service = EventRoutingService(queue: store, router: router, logger: Logger(label: "test"), batchSize: 2)
        #expect(await service.routeOnce() == 2)
        #expect(await service.routeOnce() == 1)
        #expect(await service.routeOnce() == 0)
        #expect(router.lock.withLock { router.routed } == ids, "in arrival order, with the inbox ids")
        let jobs = try store.database.read { db in try Row.fetchAll(db, sql: "SELECT event_id, subject_id FROM jobs ORDER BY id") }
        #expect(jobs.map { $0["event_id"] as Int64 } == ids)
        #expect(jobs.map { $0["subject_id"] as String } == ["p1", "p2", "p3"])

        // Routing the same event again (a crash between planning and commit) creates nothing new.
        let again = RoutedEvent(
            eventID: ids[0], companyID: "c1", subjectID: "p1", receivedAt: Timestamp(seconds: 1),
            jobs: AuditLogRouter().route(
                try WebhookEnvelope.read(
                    Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"p1"}}}"#.utf8)),
                body: [], receivedAt: Timestamp(seconds: 1), eventID: ids[0]))
        #expect(try await store.recordRouting([again]) == 0)
    }

    @Test func aCommitThatQueuesEventsWakesTheRouter() async throws {
        let store = try TestStores.makeSQLiteStore()
        let woken = Wakeup()
        store.setEventsQueuedHandler { woken.signal() }
        _ = await Self.ingest(store, candidate: "p9")
        await woken.wait()  // returns only because the commit signalled it
        #expect(try await store.unroutedEvents(limit: 10).count == 1)
    }

    /// Pressure that never drops holds routing back by `maxDeferral` per
    /// batch and no longer: time comes from a manual clock, so the test
    /// moves it instead of sleeping.
    @Test func routingGivesWayToWebhooksButNeverStops() async throws {
        let store = try TestStores.makeSQLiteStore()
        for candidate in ["q1", "q2"] { _ = await Self.ingest(store, candidate: candidate) }
        let clock = ManualWallClock()
        let service = EventRoutingService(
            queue: store, router: CountingRouter(), logger: Logger(label: "test"), batchSize: 1,
            pressure: AlwaysCrowded(), yield: BackgroundYield(pause: .milliseconds(10), maxDeferral: .milliseconds(40)),
            clock: clock)
        let running = Task { try await service.run() }
        defer { running.cancel() }

        for routedSoFar in 0..<2 {
            // Giving way: four 10 ms pauses, nothing routed before the last one ends.
            for _ in 0..<4 {
                while clock.sleeperCount == 0 { await Task.yield() }
                #expect(try store.countRows("jobs") == routedSoFar)
                clock.advance(by: .milliseconds(10))
            }
            while try store.countRows("jobs") == routedSoFar { await Task.yield() }
        }
        #expect(try store.countRows("jobs") == 2)
        #expect(try await store.unroutedEvents(limit: 10).isEmpty)
    }

    @Test func crowdedCommitsRaiseTheStoresPressureSignal() async throws {
        let store = try TestStores.makeSQLiteStore()
        _ = await Self.ingest(store, candidate: "alone")
        #expect(store.writer.lastCrowdedIngestAt == nil, "a lone webhook is no crowd")
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<64 { group.addTask { _ = await Self.ingest(store, candidate: "crowd-\(index)") } }
        }
        #expect(store.writer.lastCrowdedIngestAt != nil)
    }
}
