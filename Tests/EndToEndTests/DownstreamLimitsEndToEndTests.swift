import Foundation
import GRDB
import Hummingbird
import JSON
import NIOCore
import Synchronization
import TestServers
import Testing

/// An employee API on 127.0.0.1 that enforces its own limits: at most
/// `limit` requests per `window` (else 429 with `Retry-After`), or a scripted
/// run of failures before it recovers. Records which candidate each request was for.
final class LimitedServer: Sendable {
    struct State {
        var arrivals: [ContinuousClock.Instant] = []
        var candidates: [String] = []
        var throttled = 0
        /// When each 429 arrived, to check what came after it.
        var throttledArrivals: [ContinuousClock.Instant] = []
        var script: [Int] = []
    }

    let limit: Int
    let window: Duration
    let state = Mutex(State())

    init(limit: Int = .max, window: Duration = .seconds(1), script: [Int] = []) {
        self.limit = limit
        self.window = window
        state.withLock { $0.script = script }
    }

    func respond(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
        let candidate = (try? JSONParser.parse(Array(body.utf8)))?["candidate"]?.stringValue ?? "?"
        let now = ContinuousClock.now
        let status: Int = state.withLock { state in
            let recent = state.arrivals.filter { now - $0 < window }.count
            state.arrivals.append(now)
            state.candidates.append(candidate)
            if recent >= limit {
                state.throttled += 1
                state.throttledArrivals.append(now)
                return 429
            }
            if !state.script.isEmpty { return state.script.removeFirst() }
            return 201
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == 429 { headers[.retryAfter] = "2" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"id": "E-1"}"#)))
    }

    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/employees") { request, _ in try await self.respond(request) }
        return try await withLocalHTTPServer(router, label: "limited", body)
    }
}

@Suite("Downstream limits: rate, 429 pause, circuit breaker", .serialized)
struct DownstreamLimitsEndToEndTests {
    static func mappings(limits: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-limits-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #"""
        {"name": "hr-employee", "when": {"event": "candidate/new", "if": "candidate.status.group == 20"},
         "rest": {"url": "${HR_URL}/v1/employees", "body": {"candidate": "{{ candidate.id }}"}, "honours_idempotency_key": true,
                  "retry": {"max_delay": "3s"}, "limits": \#(limits)}}
        """#.write(toFile: directory + "/hr-employee.json", atomically: true, encoding: .utf8)
        return directory
    }

    func start(_ base: String, limits: String) throws -> Daemon {
        let daemon = Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": try Self.mappings(limits: limits), "HR_URL": base,
        ])
        try daemon.start(arguments: ["--log-level", "debug"])
        return daemon
    }

    func post(_ daemon: Daemon, count: Int) async throws {
        for n in 1...count {
            let id = String(format: "%08d-2438-4e33-b15b-1f1a20ba1c16", n)
            #expect(try await daemon.post(try Fixtures.candidate(id: id)).status == 200)
        }
    }

    func allDone(_ daemon: Daemon, _ count: Int) async throws -> Bool {
        try await daemon.waitFor(timeout: 40) { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE mapping = 'hr-employee' AND state = 'done'") == count
        }
    }

    /// Each job's recorded attempts equal the requests the server got for it: a
    /// postponed job (paused downstream, open breaker) never used an attempt.
    func attemptsMatchRequests(_ daemon: Daemon, _ server: LimitedServer) throws {
        let sent = server.state.withLock { $0.candidates }
        let rows = try daemon.query { db in
            try Row.fetchAll(
                db, sql: "SELECT json_extract(payload, '$.body.candidate') AS candidate, attempts FROM jobs WHERE mapping = 'hr-employee'")
        }
        for row in rows {
            let candidate: String = row["candidate"]
            #expect(row["attempts"] as Int == sent.filter { $0 == candidate }.count, "\(candidate)")
        }
    }

    @Test func aRateLimitKeepsWithinTheServersLimitSoNothingIsThrottled() async throws {
        let server = LimitedServer(limit: 3, window: .seconds(1))
        try await server.run { base in
            // A quarter of the server's rate: arrivals delayed by a loaded machine still stay within its window.
            let daemon = try start(base, limits: #"{"rate": "3/4s"}"#)
            defer { daemon.stop() }
            try await post(daemon, count: 7)
            #expect(try await allDone(daemon, 7), "\(daemon.log(tail: 3000))")
            #expect(server.state.withLock { $0.throttled } == 0, "paced below the server's own limit")
            try attemptsMatchRequests(daemon, server)
        }
    }

    @Test func aThrottleAnswerPausesTheDownstreamForEveryJobWithoutUsingTheirAttempts() async throws {
        let server = LimitedServer(limit: 2, window: .seconds(3))
        try await server.run { base in
            let daemon = try start(base, limits: #"{"concurrency": 1}"#)
            defer { daemon.stop() }
            try await post(daemon, count: 5)
            // Two go through; the third is throttled (429, Retry-After 2) and pauses the whole downstream:
            // after every 429 the next request of any job comes no sooner than two seconds later (a lower bound only).
            #expect(try await allDone(daemon, 5), "\(daemon.log(tail: 3000))")
            let (arrivals, throttled) = server.state.withLock { ($0.arrivals, $0.throttledArrivals) }
            #expect(!throttled.isEmpty)
            for answered429 in throttled {
                let next = try #require(arrivals.first { $0 > answered429 })
                #expect(next - answered429 >= .seconds(2), "nothing is sent while the downstream is paused")
            }
            try attemptsMatchRequests(daemon, server)
        }
    }

    @Test func theBreakerOpensAfterFailuresInARowAndAProbeClosesIt() async throws {
        let server = LimitedServer(script: [503, 503, 503])
        try await server.run { base in
            let daemon = try start(base, limits: #"{"breaker_after": 3, "breaker_open": "5s", "concurrency": 1}"#)
            defer { daemon.stop() }
            try await post(daemon, count: 4)
            #expect(try await allDone(daemon, 4), "\(daemon.log(tail: 3000))")
            #expect(daemon.log(tail: 100_000).contains("circuit breaker open after 3 failures in a row"))
            try attemptsMatchRequests(daemon, server)
            // Per downstream (scheme, host, port): outcomes, waits, the breaker (closed again).
            let metrics = try await daemon.get("/metrics").text.split(separator: "\n").map(String.init)
            func series(_ name: String, _ label: String? = nil) -> Double? {
                metrics.first { $0.hasPrefix(name + "{") && $0.contains("downstream=\"\(base)\"") && label.map($0.contains) ?? true }
                    .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
            }
            #expect(series("jobylon_bridge_downstream_requests_total", "outcome=\"failed\"") == 3)
            #expect(series("jobylon_bridge_downstream_requests_total", "outcome=\"answered\"") == 4)
            #expect((series("jobylon_bridge_downstream_waits_total", "kind=\"postponed\"") ?? 0) >= 1)
            #expect(series("jobylon_bridge_downstream_breaker_open") == 0)
        }
    }
}
