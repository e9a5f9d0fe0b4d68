import Foundation
import GRDB
import JSON
import Logging
import ServiceLifecycle
import Testing

@testable import Clocks
@testable import Domain
@testable import JobEngine
@testable import StoreSQLite
@testable import TestSupport

@Suite("Job runner with a real store and a manual clock")
struct JobRunnerTests {
    @Test func aCommitWakesTheRunnerAndJobsRunWithoutTimePassing() async throws {
        let store = try TestStores.makeSQLiteStore()
        let clock = ManualWallClock()
        let runner = JobRunner(store: store, executors: [LogExecutor()], clock: clock, owner: "test", logger: Logger(label: "test"))
        store.setJobsCommittedHandler { runner.wakeup.signal() }
        let group = ServiceGroup(configuration: .init(services: [runner], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for n in 0..<20 {
                _ = await TestStores.ingest(store, candidate: "p\(n)", at: clock.now())
            }
            // The manual clock never moves: only the commit wake-up can run these.
            #expect(try await TestStores.waitUntil { try store.jobs(state: "done").count == 20 })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try store.jobs(state: "running").isEmpty)
    }

    /// While webhooks crowd the writer, claims wait `maxDeferral` (on the
    /// injected clock) and then go ahead anyway.
    @Test func claimsGiveWayToWebhooksButNeverStop() async throws {
        let store = try TestStores.makeSQLiteStore()
        _ = await TestStores.ingest(store, candidate: "p1", at: Timestamp(seconds: 1_767_225_600))
        let clock = ManualWallClock()
        var configuration = JobRunnerConfiguration()
        configuration.yield = BackgroundYield(pause: .milliseconds(10), maxDeferral: .milliseconds(30))
        let runner = JobRunner(
            store: store, executors: [LogExecutor()], clock: clock, configuration: configuration,
            owner: "test", logger: Logger(label: "test"), pressure: AlwaysCrowded())
        let group = ServiceGroup(configuration: .init(services: [runner], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<3 {
                while clock.sleeperCount == 0 { await Task.yield() }
                #expect(try store.jobs(state: "done").isEmpty, "claimed while giving way")
                clock.advance(by: .milliseconds(10))
            }
            #expect(try await TestStores.waitUntil { try store.jobs(state: "done").count == 1 })
            await group.triggerGracefulShutdown()
            // A pause in progress ends on the clock, like any other wait: keep it moving until the runner is gone.
            let ticking = Task {
                while !Task.isCancelled {
                    clock.advance(by: .milliseconds(10))
                    await Task.yield()
                }
            }
            try await tasks.waitForAll()
            ticking.cancel()
        }
    }

    @Test func gracefulShutdownReleasesNothingUnfinished() async throws {
        let store = try TestStores.makeSQLiteStore()
        let clock = ManualWallClock()
        let runner = JobRunner(store: store, executors: [], clock: clock, owner: "test", logger: Logger(label: "test"))
        store.setJobsCommittedHandler { runner.wakeup.signal() }
        let group = ServiceGroup(configuration: .init(services: [runner], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = await TestStores.ingest(store, candidate: "p1", at: clock.now())
            // No executor for "log": the job is held with a reason, never lost.
            #expect(try await TestStores.waitUntil { try store.jobs(state: "held").count == 1 })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try store.jobs(state: "held").first?.lastError == HoldReason.noExecutor(kind: "log").description)
    }

    @Test func retryableFailuresBackOffOnTheInjectedClock() async throws {
        let clock = ManualWallClock()
        let runner = JobRunner(store: try TestStores.makeSQLiteStore(), executors: [], clock: clock, owner: "t", logger: Logger(label: "test"))
        let rules = RetryRules(
            backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(60)), maxAttempts: 3,
            giveUpAfter: .seconds(3600))
        let job = ClaimedJob(
            id: 1, eventID: 1, mapping: "m", item: "", kind: "log", effectKey: "k", payload: [], attempt: 1, companyID: nil,
            subjectID: nil, createdAt: clock.now(), firstAttemptAt: clock.now())
        guard case .retry(let at, _) = runner.decide(.transient(reason: "503", retryAfter: nil), job: job, rules: rules) else {
            Issue.record("expected a retry")
            return
        }
        #expect(at > clock.now())
        #expect(at <= clock.now().adding(.seconds(2)))
        if case .retry(let at, _) = runner.decide(.transient(reason: "429", retryAfter: .seconds(120)), job: job, rules: rules) {
            #expect(at == clock.now().adding(.seconds(120)))  // Retry-After wins over the backoff
        } else {
            Issue.record("expected a retry")
        }
        var last = job
        last.attempt = 3
        #expect(runner.decide(.transient(reason: "503", retryAfter: nil), job: last, rules: rules) == .dead(reason: "gave up after 3 attempts: 503"))
        #expect(runner.decide(.permanent(reason: "400"), job: job, rules: rules) == .dead(reason: "400"))
    }

    /// Regression: a mapping's `max_attempts` above 25 was cut at 25 by the runner's own default.
    @Test func theMappingsMaxAttemptsIsHonouredAboveTheOldDefault() async throws {
        let clock = ManualWallClock()
        let runner = JobRunner(store: try TestStores.makeSQLiteStore(), executors: [], clock: clock, owner: "t", logger: Logger(label: "test"))
        let rules = RetryRules(
            backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(3600)), maxAttempts: 200,
            giveUpAfter: .seconds(7 * 86_400))
        let job = ClaimedJob(
            id: 1, eventID: 1, mapping: "m", item: "", kind: "rest", effectKey: "k", payload: [], attempt: 30, companyID: nil,
            subjectID: nil, createdAt: clock.now(), firstAttemptAt: clock.now())
        guard case .retry = runner.decide(.transient(reason: "503", retryAfter: nil), job: job, rules: rules) else {
            Issue.record("attempt 30 of 200 must be retried")
            return
        }
    }

    /// Reasons are redacted by the values the job sent and by pattern before they are stored.
    @Test func reasonsAreRedactedByValueAndPatternBeforeTheyAreRecorded() async throws {
        let clock = ManualWallClock()
        let runner = JobRunner(store: try TestStores.makeSQLiteStore(), executors: [], clock: clock, owner: "t", logger: Logger(label: "test"))
        let payload = Array(#"{"method":"POST","url":"https://erp/x","body":{"iban":"SE4550000000058398257466","name":"Bruce Wayne"}}"#.utf8)
        let job = ClaimedJob(
            id: 1, eventID: 1, mapping: "m", item: "", kind: "rest", effectKey: "k", payload: payload, attempt: 1,
            companyID: nil, subjectID: nil, createdAt: clock.now(), firstAttemptAt: clock.now())
        let completion = runner.decide(
            .permanent(reason: #"HTTP 422: IBAN "SE45 5000 0000 0583 9825 7466" of Bruce Wayne is not valid; call +46 70 123 45 67"#),
            job: job, rules: .standard)
        guard case .dead(let reason) = completion else {
            Issue.record("expected dead")
            return
        }
        #expect(!reason.contains("SE45"))
        #expect(!reason.contains("7466"))
        #expect(!reason.contains("Bruce"))
        #expect(!reason.contains("123 45"))
        #expect(reason.contains("is not valid"))
    }
}
