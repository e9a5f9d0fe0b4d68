import Foundation
import GRDB
import Hummingbird
import JSON
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TestServers
import Testing

/// A payroll system on 127.0.0.1 for the daemon to talk to: records every
/// request and answers from a script (e.g. 503 once, then 201).
final class PayrollServer: Sendable {
    struct Received: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: [UInt8]
    }

    let received = Mutex<[Received]>([])
    /// Status codes to answer with, in order; the last one repeats.
    let script: Mutex<[Int]>
    /// How long to hold each request before answering, in order; the last one repeats.
    let delays: Mutex<[Duration]>

    init(script: [Int], delay: Duration = .zero, delays: [Duration]? = nil) {
        self.script = Mutex(script)
        self.delays = Mutex(delays ?? [delay])
    }

    /// Arrival times of the requests (monotonic), for lower-bound checks.
    let arrivals = Mutex<[ContinuousClock.Instant]>([])

    var requests: [Received] { received.withLock { $0 } }

    func respond(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        received.withLock {
            $0.append(Received(method: request.method.rawValue, path: request.uri.path, headers: headers, body: Array(body.readableBytesView)))
        }
        arrivals.withLock { $0.append(ContinuousClock.now) }
        let delay = delays.withLock { list -> Duration in list.count > 1 ? list.removeFirst() : (list.first ?? .zero) }
        if delay > .zero { try await Task.sleep(for: delay) }
        let status = script.withLock { script -> Int in script.count > 1 ? script.removeFirst() : (script.first ?? 200) }
        var responseHeaders: HTTPFields = [.contentType: "application/json"]
        if status == 503 || status == 429 { responseHeaders[.retryAfter] = "1" }
        let text = status < 300 ? #"{"employeeId":"E-1"}"# : #"{"error":"iban SE6281323143611896423859 rejected for bruce@wayneenterprises.com"}"#
        return Response(status: .init(code: status), headers: responseHeaders, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Runs the server for the duration of `body`.
    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/**") { request, _ in try await self.respond(request) }
        return try await withLocalHTTPServer(router, label: "payroll", body)
    }
}

@Suite("REST delivery to a payroll server", .serialized)
struct PayrollEndToEndTests {
    func daemon(payroll: String) -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0",
            "JOBYLON_BRIDGE_MAPPINGS": MappingsEndToEndTests.bundledMappings,
            "PAYROLL_URL": payroll,
            "PAYROLL_TOKEN": "payroll-secret-token",
            "JOBYLON_API_URL": payroll + "/jobylon",
            "JOBYLON_API_KEY": "jobylon-key",
        ])
    }

    @Test func aHireReachesPayrollOnceThroughARetryAndTheResultCardFollows() async throws {
        let payroll = PayrollServer(script: [503, 201, 200])
        try await payroll.run { base in
            let daemon = daemon(payroll: base)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'jobylon-result-card'") == "done"
                }, "\(daemon.log(tail: 3000))")
            let requests = payroll.requests
            let employees = requests.filter { $0.path == "/v1/employees" }
            #expect(employees.count == 2)  // 503, then 201
            #expect(employees.map(\.body).allSatisfy { $0 == employees[0].body }, "retries must send the same bytes")
            let key = "payroll-new-hire:04b9171e-6d74-451f-a8e3-9bc3cf2b2954:aed6532d-2438-4e33-b15b-1f1a20ba1c16"
            #expect(employees.allSatisfy { $0.headers["idempotency-key"] == key })
            #expect(employees.first?.headers["authorization"] == "Bearer payroll-secret-token")
            let sent = try JSONParser.parse(employees[0].body)
            #expect(sent["iban"] == "SE6281323143611896423859")
            #expect(sent["startDate"] == "2025-01-01")
            let card = try #require(requests.first { $0.path == "/jobylon/candidates/aed6532d-2438-4e33-b15b-1f1a20ba1c16/result" })
            #expect(card.headers["authorization"] == "Token jobylon-key")
            let cardBody = try JSONParser.parse(card.body)
            #expect(cardBody["result"]?["subtitle"] == "Employee E-1")
            // `jobs show` of the card shows what was sent (rendered with the capture), not the plan-time request.
            let cardID = try #require(
                try daemon.query { db in try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE mapping = 'jobylon-result-card'") })
            let shownCard = try daemon.cli(["jobs", "show", String(cardID)])
            #expect(shownCard.output.contains(#""value": "E-1""#), "\(shownCard.output)")
            let capture = try daemon.query { db in try Data.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'payroll-new-hire'") }
            #expect(capture.map { String(decoding: $0, as: UTF8.self) } == #"{"employee_id":"E-1"}"#)
            let attempts = try daemon.query { db in
                try String.fetchAll(
                    db, sql: "SELECT outcome FROM job_attempts JOIN jobs ON jobs.id = job_id WHERE mapping = 'payroll-new-hire' ORDER BY attempt")
            }
            #expect(attempts == ["retry", "done"])

            // A hand re-send of the same hire: nothing more reaches payroll or Jobylon.
            #expect(try await daemon.post(try Fixtures.candidate(id: "aed6532d-2438-4e33-b15b-1f1a20ba1c16", extra: " (again)")).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM jobs WHERE mapping IN ('payroll-new-hire', 'jobylon-result-card') AND state = 'skipped'") == 2
                })
            #expect(payroll.requests.count == requests.count)
            // The secret never reached the store or the log.
            let payloads = try daemon.query { db in try Data.fetchAll(db, sql: "SELECT payload FROM jobs") }
            #expect(payloads.allSatisfy { !String(decoding: $0, as: UTF8.self).contains("payroll-secret-token") })
            let log = daemon.log(tail: 50_000)
            for secret in ["payroll-secret-token", "SE6281323143611896423859", "bruce@wayneenterprises.com", "+468165621", "jobylon-key"] {
                #expect(!log.contains(secret), "\(secret) appeared in the log")
            }
        }
    }

    @Test func aPermanentRejectionIsDeadWithARedactedReason() async throws {
        let payroll = PayrollServer(script: [400])
        try await payroll.run { base in
            let daemon = daemon(payroll: base)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'payroll-new-hire'") == "dead"
                })
            let reason =
                try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE mapping = 'payroll-new-hire'") } ?? ""
            #expect(reason.hasPrefix("HTTP 400"))
            #expect(!reason.contains("SE6281323143611896423859"))
            #expect(!reason.contains("bruce@"))
            #expect(payroll.requests.filter { $0.path == "/v1/employees" }.count == 1)
            // The result card still waits: its dependency never succeeded.
            let card = try daemon.query { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'jobylon-result-card'") }
            #expect(card == "held")
        }
    }
}

@Suite("Operator commands beside a running daemon", .serialized)
struct OperatorEndToEndTests {

    @Test func aHireIsStagedForTheNightlyCSVAndAPartialExportShowsIt() async throws {
        let exports = FileManager.default.temporaryDirectory.appendingPathComponent("jb-exports-\(UUID().uuidString)").path
        let daemon = Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": MappingsEndToEndTests.bundledMappings, "EXPORT_DIR": exports,
        ])
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
        #expect(
            try await daemon.waitFor { db in
                try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'hired-nightly-csv'") == "done"
            })
        let result = try daemon.cli(["export", "--mapping", "hired-nightly-csv", "--now"])
        #expect(result.status == 0, "\(result.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: exports)
        let partial = try #require(files.first { $0.hasPrefix("hired-") && $0.contains("-partial-") && $0.hasSuffix(".csv") }, "\(files)")
        let bytes = try #require(FileManager.default.contents(atPath: exports + "/" + partial))
        #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
        let text = String(decoding: bytes.dropFirst(3), as: UTF8.self)
        // Text cells quoted (the phone keeps its + in a spreadsheet), the typed start date bare.
        #expect(
            text.hasPrefix(
                #""Anställnings-ID";"Förnamn";"Efternamn";"E-post";"Telefon";"IBAN";"Startdatum";"Chef";"Befattning";"Avdelning"\#r\#n"#))
        #expect(
            text.contains(
                #""5903582";"Bruce";"Wayne";"bruce@wayneenterprises.com";"+468165621";"SE6281323143611896423859";2025-01-01;"#
                    + #""Selina Kyle";"Superhero";"Engineering"\#r\#n"#)
        )
        let open = try daemon.cli(["export", "--mapping", "hired-nightly-csv", "--period", String(MappingClockText.today())])
        #expect(open.status != 0 && open.output.contains("has not ended yet"), "\(open.output)")
    }

    @Test func retryShowReplayAndForce() async throws {
        let payroll = PayrollServer(script: [400, 201])
        try await payroll.run { base in
            let daemon = PayrollEndToEndTests().daemon(payroll: base)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'payroll-new-hire'") == "dead"
                })
            let id = try #require(try daemon.query { db in try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE mapping = 'payroll-new-hire'") })

            let retried = try daemon.cli(["jobs", "retry", "--dead", "--mapping", "payroll-new-hire"])
            #expect(retried.status == 0, "\(retried.output)")
            #expect(retried.output.contains("1 job(s) queued again"))
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [id]) == "done"
                })
            let shown = try daemon.cli(["jobs", "show", String(id)])
            #expect(shown.output.contains("state: done"))
            #expect(shown.output.contains("attempt 1 at"))
            #expect(shown.output.contains("dead — HTTP 400"))
            #expect(shown.output.contains("Bearer ${PAYROLL_TOKEN}"), "the stored request keeps the placeholder")
            #expect(!shown.output.contains("payroll-secret-token"))

            let replay = try daemon.cli(["replay", "--event", "1", "--mapping", "payroll-new-hire"])
            #expect(replay.output.contains("payroll-new-hire\tskipped (delivered)"), "\(replay.output)")
            let before = payroll.requests.filter { $0.path == "/v1/employees" }.count

            let forced = try daemon.cli(["replay", "--event", "1", "--mapping", "payroll-new-hire", "--force"])
            #expect(forced.output.contains("payroll-new-hire\tforced"))
            #expect(try await daemon.waitFor { _ in payroll.requests.filter { $0.path == "/v1/employees" }.count == before + 1 })
            let keys = payroll.requests.filter { $0.path == "/v1/employees" }.compactMap { $0.headers["idempotency-key"] }
            #expect(Set(keys).count == 2, "a forced replay must use a new idempotency key")

            #expect(try daemon.cli(["jobs", "cancel", String(id)]).status != 0, "a done job cannot be cancelled")
        }
    }
}

enum MappingClockText {
    /// Today's date in Stockholm (the bundled CSV mappings' zone), yyyy-MM-dd.
    static func today() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Stockholm") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day], from: Date())
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}

/// Writes mapping files into a fresh directory for one test.
func mappingDirectory(_ files: [String: String]) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-maps-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (name, text) in files { try text.write(toFile: "\(directory)/\(name).json", atomically: true, encoding: .utf8) }
    return directory
}

@Suite("REST delivery semantics", .serialized)
struct RestSemanticsEndToEndTests {
    func restMapping(_ name: String, url: String, honours: Bool = false, extra: String = "") -> String {
        """
        {"name": "\(name)", "when": {"event": "job/new"}, "effect_key": "{{ company.id }}:{{ job.id }}:{{ event.id }}",
         "rest": {"url": "\(url)", "body": {"job": "{{ job.id }}"}, "success": [200, 201, 409],
                  "honours_idempotency_key": \(honours), "retry": {"max_delay": "5s"} \(extra)}}
        """
    }

    @Test func conflictCountsAsDeliveredAndRetryAfterIsAWaitAtLeast() async throws {
        let conflict = PayrollServer(script: [409])
        let limited = PayrollServer(script: [429, 201])
        try await conflict.run { a in
            try await limited.run { b in
                let directory = try mappingDirectory([
                    "exists": restMapping("exists", url: a + "/employees"),
                    "limited": restMapping(
                        "limited", url: b + "/employees", extra: #", "auth": {"user": "${PAY_USER}", "password": "${PAY_PASSWORD}"}"#),
                ])
                let daemon = Daemon(environment: [
                    "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory,
                    "PAY_USER": "bridge", "PAY_PASSWORD": "pa:ss",
                ])
                try daemon.start()
                defer { daemon.stop() }
                #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
                #expect(
                    try await daemon.waitFor { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 2
                    }, "\(daemon.log(tail: 2000))")
                #expect(conflict.requests.count == 1)
                let times = limited.arrivals.withLock { $0 }
                #expect(times.count == 2)
                if times.count == 2 { #expect(times[1] - times[0] >= .milliseconds(950), "Retry-After: 1 was not honoured") }
                #expect(limited.requests.first?.headers["authorization"] == "Basic " + Data("bridge:pa:ss".utf8).base64EncodedString())
                #expect(!daemon.log(tail: 20_000).contains("pa:ss"))
            }
        }
    }

    @Test func aTimeoutIsRetriedAndThenSucceeds() async throws {
        let server = PayrollServer(script: [201], delays: [.seconds(3), .zero])
        try await server.run { base in
            let directory = try mappingDirectory(["slowfirst": restMapping("slowfirst", url: base + "/x", extra: #", "timeout": "1s""#)])
            let daemon = Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory])
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
            #expect(try await daemon.waitFor { db in try String.fetchOne(db, sql: "SELECT state FROM jobs") == "done" })
            let attempts = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT outcome, detail FROM job_attempts ORDER BY attempt") }
            // The first attempt times out; a later one succeeds (on a loaded machine
            // a second attempt may time out too: order matters here, not timing).
            let outcomes = attempts.map { $0["outcome"] as String }
            #expect(outcomes.first == "retry" && outcomes.last == "done" && outcomes.dropLast().allSatisfy { $0 == "retry" }, "\(outcomes)")
            let firstDetail: String = attempts.first?["detail"] ?? ""
            #expect(firstDetail.contains("network:"))
            #expect(server.requests.count == attempts.count)
        }
    }

    @Test func aHangingEndpointDoesNotHoldUpAnotherMapping() async throws {
        let slow = PayrollServer(script: [200], delay: .seconds(4))
        let fast = PayrollServer(script: [200])
        try await slow.run { a in
            try await fast.run { b in
                // "a-slow" sorts first, so its jobs are older and claimed first.
                let directory = try mappingDirectory([
                    "a-slow": restMapping("a-slow", url: a + "/x"),
                    "b-fast": restMapping("b-fast", url: b + "/x"),
                ])
                let daemon = Daemon(environment: [
                    "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory,
                    "JOBYLON_BRIDGE_MAPPING_CONCURRENCY": "4", "JOBYLON_BRIDGE_RUNNER_CONCURRENCY": "8",
                ])
                try daemon.start()
                defer { daemon.stop() }
                // 12 events: 12 slow jobs could fill every runner slot; the cap keeps 4 for others.
                for n in 0..<12 {
                    let body = String(decoding: try Fixtures.bytes("job-new"), as: UTF8.self)
                        .replacingOccurrences(
                            of: "edc3d60e-53d3-4f54-8062-44e4139a52e9", with: "edc3d60e-53d3-4f54-8062-0000000000\(String(format: "%02d", n))")
                    #expect(try await daemon.post(Array(body.utf8)).status == 200)
                }
                #expect(
                    try await daemon.waitFor(timeout: 30) { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE mapping = 'b-fast' AND state = 'done'") == 12
                    })
                // Every fast delivery finished while slow ones were still waiting on their endpoint.
                let slowDone = try daemon.query { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE mapping = 'a-slow' AND state = 'done'")
                }
                #expect(slowDone == 0, "fast deliveries waited for the slow endpoint")
                #expect(fast.requests.count == 12)
            }
        }
    }

    @Test func aCrashBetweenSendAndCommitFollowsTheMappingsDeclaration() async throws {
        let server = PayrollServer(script: [201], delay: .seconds(2))
        try await server.run { base in
            let directory = try mappingDirectory([
                "safe": restMapping("safe", url: base + "/safe", honours: true),
                "unsafe": restMapping("unsafe", url: base + "/unsafe", honours: false),
            ])
            let daemon = Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory])
            try daemon.start()
            #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
            // Both requests reached the downstream; the daemon dies before it can record the answers.
            for _ in 0..<200 where server.requests.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.requests.count == 2)
            daemon.kill9()
            try daemon.start()
            defer { daemon.stop() }
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'safe'") == "done"
                })
            let unsafe = try daemon.query { db in try Row.fetchOne(db, sql: "SELECT state, last_error FROM jobs WHERE mapping = 'unsafe'") }
            #expect(unsafe?["state"] as String? == "in_doubt")
            let safeRequests = server.requests.filter { $0.path == "/safe" }
            #expect(safeRequests.count == 2, "resent once after the crash")
            #expect(Set(safeRequests.compactMap { $0.headers["idempotency-key"] }).count == 1, "with the same idempotency key")
            #expect(server.requests.filter { $0.path == "/unsafe" }.count == 1, "never resent without an operator")
        }
    }
}
