import JSON
import Testing

@testable import BridgeCore

@Suite("Envelope and event kinds")
struct EnvelopeTests {
    @Test func documentedPairsAndTheCreateSynonym() {
        #expect(EventKind(type: "company", action: "signup") == .companySignup)
        #expect(EventKind(type: "job", action: "new") == .jobNew)
        #expect(EventKind(type: "job", action: "create") == .jobNew)
        #expect(EventKind(type: "job", action: "update") == .jobUpdate)
        #expect(EventKind(type: "candidate", action: "new") == .candidateNew)
        #expect(EventKind(type: "application", action: "created") == .unknown(type: "application", action: "created"))
        #expect(!EventKind(type: "candidate", action: "update").isDocumented)
        #expect(EventKind(type: "job", action: "create").description == "job/new")
    }

    @Test func readsIdsOfEachKind() throws {
        let signup = try WebhookEnvelope.read(Array(#"{"event_type":"company","action":"signup","data":{"company_id":"c1","internal_id":23}}"#.utf8))
        #expect(signup.companyID == "c1")
        #expect(signup.subjectID == "c1")
        let job = try WebhookEnvelope.read(Array(#"{"event_type":"job","action":"update","data":{"company":{"id":"c1"},"job":{"id":"j1"}}}"#.utf8))
        #expect(job.subjectID == "j1")
        let candidate = try WebhookEnvelope.read(Array(#"{"data":{"candidate":{"id":"p1"},"company":{"id":7}},"action":"new","event_type":"candidate",}"#.utf8))
        #expect(candidate.subjectID == "p1")
        #expect(candidate.companyID == "7")
        #expect(candidate.lenient)
    }

    @Test func refusesBadEnvelopesPrecisely() {
        func error(_ text: String) -> EnvelopeError? {
            do {
                _ = try WebhookEnvelope.read(Array(text.utf8))
                return nil
            } catch {
                return error
            }
        }
        #expect(error(#"{"action":"new","data":{}}"#) == .missingField("event_type"))
        #expect(error(#"{"event_type":"","action":"new","data":{}}"#) == .wrongType("event_type", expected: "a non-empty string"))
        #expect(error(#"{"event_type":"job","data":{}}"#) == .missingField("action"))
        #expect(error(#"{"event_type":"job","action":"new"}"#) == .missingField("data"))
        #expect(error(#"{"event_type":"job","action":"new","data":null}"#) == .wrongType("data", expected: "an object"))
        if case .malformedJSON(let json) = error("{\"event_type\":") {
            #expect(json.kind == .unexpectedEnd(expected: "a value"))
        } else {
            Issue.record("expected malformed JSON")
        }
    }

    @Test func companySnapshotFromSignup() throws {
        let data = try JSONParser.parse(#"{"company_id":"c1","internal_id":23,"company_name":"Wayne","settings":{"token":"t"}}"#)
        let snapshot = try #require(CompanySnapshot(signupData: data))
        #expect(snapshot.internalID == "23")
        #expect(snapshot.name == "Wayne")
        #expect(snapshot.settings == ["token": "t"])
        #expect(CompanySnapshot(signupData: ["company_id": ""]) == nil)
    }
}

@Suite("Audit-log router")
struct AuditLogRouterTests {
    @Test func oneJobPerDocumentedEventKeyedByEntity() throws {
        let envelope = try WebhookEnvelope.read(Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c"},"candidate":{"id":"p"}}}"#.utf8))
        let jobs = AuditLogRouter().route(envelope, body: [], receivedAt: Timestamp(seconds: 0))
        #expect(jobs.count == 1)
        #expect(jobs.first?.effectKey == "candidate/new:c:p")
        #expect(jobs.first?.crashPolicy == .rerun)
        let unknown = try WebhookEnvelope.read(Array(#"{"event_type":"x","action":"y","data":{}}"#.utf8))
        #expect(AuditLogRouter().route(unknown, body: [], receivedAt: Timestamp(seconds: 0)).isEmpty)
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test func exponentialWithFullJitterAndACap() {
        let policy = RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(60), maxAttempts: 10)
        #expect(policy.delay(afterAttempt: 1, jitter: 0.999) <= .seconds(2))
        #expect(policy.delay(afterAttempt: 1, jitter: 0.999) > .milliseconds(1990))
        #expect(policy.delay(afterAttempt: 3, jitter: 0.999) > .milliseconds(7900))
        #expect(policy.delay(afterAttempt: 20, jitter: 0.999) <= .seconds(60))
        #expect(policy.delay(afterAttempt: 20, jitter: 0) >= .milliseconds(1))
        #expect(policy.delay(afterAttempt: 64, jitter: 0.5) <= .seconds(60))
    }
}

@Suite("Manual wall clock")
struct ManualWallClockTests {
    @Test func sleepersWakeInDeadlineOrderWhenTimeAdvances() async throws {
        let clock = ManualWallClock(now: Timestamp(seconds: 100))
        let order = OrderLog()
        await withTaskGroup(of: Void.self) { group in
            for (name, at) in [("late", 130), ("early", 110)] {
                group.addTask {
                    try? await clock.sleep(until: Timestamp(seconds: Int64(at)))
                    order.append(name)
                }
            }
            while clock.sleeperCount < 2 { await Task.yield() }
            clock.advance(by: .seconds(15))
            while order.entries.count < 1 { await Task.yield() }
            #expect(order.entries == ["early"])
            clock.advance(by: .seconds(15))
        }
        #expect(order.entries == ["early", "late"])
        #expect(clock.now() == Timestamp(seconds: 130))
    }

    @Test func cancelledSleepThrows() async {
        let clock = ManualWallClock()
        let task = Task { try await clock.sleep(until: clock.now().adding(.seconds(60))) }
        while clock.sleeperCount < 1 { await Task.yield() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLockLike()
    private var items: [String] = []
    func append(_ s: String) { lock.locked { items.append(s) } }
    var entries: [String] { lock.locked { items } }
}

import Synchronization

final class NSLockLike: Sendable {
    private let mutex = Mutex(())
    func locked<T>(_ body: () -> T) -> T { mutex.withLock { _ in body() } }
}
