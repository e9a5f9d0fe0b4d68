import Foundation
import GRDB
import Hummingbird
import JSON
import NIOCore
import Synchronization
import TestServers
import Testing

/// An HR system on 127.0.0.1 shaped like the real ones a flow talks to:
/// employees and persons to search, a person create that answers its id in
/// `Location`, an employee create, and Jobylon's result card. Each route
/// answers from a script (the last answer repeats) and records what it got.
final class HRServer: Sendable {
    struct Answer: Sendable {
        var status: Int
        var body: String
        var headers: [(String, String)] = []
        var delay: Duration = .zero
    }

    struct Received: Sendable {
        var route: String
        var query: String
        var headers: [String: String]
        var body: String
    }

    let scripts: Mutex<[String: [Answer]]>
    let received = Mutex<[Received]>([])

    init(_ scripts: [String: [Answer]] = [:]) {
        var all: [String: [Answer]] = [
            "GET /v1/employees": [Answer(status: 200, body: #"{"data": []}"#)],
            "GET /v1/persons": [Answer(status: 200, body: #"{"data": [{"id": "M-7"}]}"#)],
            "POST /v1/persons": [Answer(status: 201, body: "{}", headers: [("Location", "/v1/persons/P-1")])],
            "POST /v1/employees": [Answer(status: 201, body: #"{"id": "E-1"}"#)],
            "POST /jobylon/result": [Answer(status: 200, body: "{}")],
        ]
        for (route, answers) in scripts { all[route] = answers }
        self.scripts = Mutex(all)
    }

    var requests: [Received] { received.withLock { $0 } }
    func count(_ route: String) -> Int { requests.filter { $0.route == route }.count }

    func respond(_ request: Request, route: String) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        received.withLock {
            $0.append(Received(route: route, query: request.uri.query ?? "", headers: headers, body: String(buffer: body)))
        }
        let answer = scripts.withLock { scripts -> Answer in
            var list = scripts[route] ?? [Answer(status: 404, body: "{}")]
            let first = list.count > 1 ? list.removeFirst() : list[0]
            scripts[route] = list
            return first
        }
        if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
        var fields: HTTPFields = [.contentType: "application/json"]
        for (name, value) in answer.headers {
            switch name {
            case "Location": fields[.location] = value
            case "Retry-After": fields[.retryAfter] = value
            default: break
            }
        }
        return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
    }

    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/v1/employees") { request, _ in try await self.respond(request, route: "GET /v1/employees") }
        router.get("/v1/persons") { request, _ in try await self.respond(request, route: "GET /v1/persons") }
        router.post("/v1/persons") { request, _ in try await self.respond(request, route: "POST /v1/persons") }
        router.post("/v1/employees") { request, _ in try await self.respond(request, route: "POST /v1/employees") }
        router.post("/jobylon/candidates/:id/result") { request, _ in try await self.respond(request, route: "POST /jobylon/result") }
        return try await withLocalHTTPServer(router, label: "hr", body)
    }
}

@Suite("Flows against an HR server", .serialized)
struct FlowEndToEndTests {
    static let example = MappingsEndToEndTests.bundledMappings + "/examples/hr-new-hire-flow.json"

    /// A mappings directory with the documented flow example, optionally changed.
    static func mappings(_ edit: (String) -> String = { $0 }) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-flow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let text = try String(contentsOfFile: example, encoding: .utf8)
        try edit(text).write(toFile: directory + "/hr-new-hire-flow.json", atomically: true, encoding: .utf8)
        return directory
    }

    func daemon(hr: String, mappings: String, dataDir: String? = nil) -> Daemon {
        Daemon(
            dataDir: dataDir,
            environment: [
                "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "HR_URL": hr, "HR_TOKEN": "hr-secret-token",
                "JOBYLON_API_URL": hr + "/jobylon", "JOBYLON_API_KEY": "jobylon-key", "HR_LEGAL_ENTITY": "LE-9",
            ])
    }

    func flowJob(_ daemon: Daemon) throws -> (id: Int64, state: String)? {
        try daemon.query { db in
            try Row.fetchOne(db, sql: "SELECT id, state FROM jobs WHERE mapping = 'hr-new-hire-flow'").map { ($0["id"], $0["state"]) }
        }
    }

    func waitForState(_ daemon: Daemon, _ state: String, timeout: TimeInterval = 30) async throws -> Bool {
        try await daemon.waitFor(timeout: timeout) { db in
            try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'hr-new-hire-flow'") == state
        }
    }

    @Test func aHireNeedingALookupAPersonAndAnEmployeeLandsWithBothIds() async throws {
        let hr = HRServer()
        try await hr.run { base in
            let daemon = daemon(hr: base, mappings: try Self.mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await waitForState(daemon, "done"), "\(daemon.log(tail: 3000))")
            #expect(hr.requests.map(\.route) == ["GET /v1/employees", "GET /v1/persons", "POST /v1/persons", "POST /v1/employees"])
            let employee = try #require(hr.requests.last)
            let body = try JSONParser.parse(Array(employee.body.utf8))
            #expect(body["person_id"] == "P-1", "the id from the person create's Location header")
            #expect(body["supervisor_id"] == "M-7", "the manager found by the lookup")
            #expect(body["iban"] == "SE6281323143611896423859")
            #expect(body["legal_entity"] == "LE-9", "a ${VARIABLE} in a body is filled at send time")
            #expect(employee.headers["authorization"] == "Bearer hr-secret-token")
            #expect(hr.requests.first?.query.contains("email=bruce%40wayneenterprises.com") == true)
            let id = try #require(try flowJob(daemon)).id
            let show = try daemon.cli(["jobs", "show", "\(id)"])
            #expect(show.output.contains("create_person: succeeded HTTP 201 · person_id=P-1"), "\(show.output)")
            #expect(show.output.contains("create_employee: succeeded HTTP 201 · employee_id=E-1"))
            for secret in ["SE6281323143611896423859", "bruce@wayneenterprises.com", "hr-secret-token", "Selina Kyle"] {
                #expect(!show.output.contains(secret))
                #expect(!daemon.log(tail: 50_000).contains(secret))
            }
            // A hand re-send is a new body: the effect ledger skips the whole flow.
            #expect(try await daemon.post(try Fixtures.candidate(id: "aed6532d-2438-4e33-b15b-1f1a20ba1c16", extra: " again")).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE mapping = 'hr-new-hire-flow' AND state = 'skipped'") == 1
                })
            #expect(hr.count("POST /v1/employees") == 1)
        }
    }

    @Test func anEmployeeFoundByTheFirstLookupFinishesTheFlowWithoutCreatingAnything() async throws {
        let hr = HRServer(["GET /v1/employees": [.init(status: 200, body: #"{"data": [{"id": "E-77"}]}"#)]])
        try await hr.run { base in
            let daemon = daemon(hr: base, mappings: try Self.mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await waitForState(daemon, "done"))
            #expect(hr.requests.map(\.route) == ["GET /v1/employees"])
            let capture = try daemon.query { db in try Data.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'hr-new-hire-flow'") }
            #expect(try capture.map { try JSONParser.parse([UInt8]($0)) }?["find_employee"]?["employee_id"] == "E-77")
        }
    }

    @Test func aDuplicateOnCreateIsAlreadyDoneAndTheExistingPersonIsLookedUp() async throws {
        let hr = HRServer([
            "POST /v1/persons": [.init(status: 409, body: #"{"error": "email must be unique"}"#)],
            "GET /v1/persons": [
                .init(status: 200, body: #"{"data": [{"id": "M-7"}]}"#), .init(status: 200, body: #"{"data": [{"id": "P-3"}]}"#),
            ],
        ])
        try await hr.run { base in
            let daemon = daemon(hr: base, mappings: try Self.mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await waitForState(daemon, "done"), "\(daemon.log(tail: 3000))")
            #expect(
                hr.requests.map(\.route) == ["GET /v1/employees", "GET /v1/persons", "POST /v1/persons", "GET /v1/persons", "POST /v1/employees"])
            #expect(try JSONParser.parse(Array(try #require(hr.requests.last).body.utf8))["person_id"] == "P-3")
        }
    }

    @Test func aTwoHundredWithAnErrorObjectFailsTheFlowSaysWhatWasCreatedAndSendsTheFailureCard() async throws {
        let hr = HRServer(["POST /v1/employees": [.init(status: 200, body: #"{"error": {"code": -32602, "message": "bad supervisor"}}"#)]])
        try await hr.run { base in
            let daemon = daemon(hr: base, mappings: try Self.mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await waitForState(daemon, "dead"), "\(daemon.log(tail: 3000))")
            let reason = try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE mapping = 'hr-new-hire-flow'") }
            #expect(reason?.contains("step create_employee failed: HTTP 200 (outcomes: response.body.error)") == true, "\(reason ?? "")")
            #expect(reason?.contains("done before: find_employee, find_manager (manager_id M-7), create_person (person_id P-1)") == true)
            #expect(reason?.contains("on_failure sent") == true)
            let card = try #require(hr.requests.first { $0.route == "POST /jobylon/result" })
            #expect(card.body.contains("create_employee failed"))
            #expect(card.headers["authorization"] == "Token jobylon-key", "the flow's HR credentials never go to Jobylon")
            // Retried, the flow resumes at the failed step: nothing created before is sent again.
            hr.scripts.withLock { $0["POST /v1/employees"] = [.init(status: 201, body: #"{"id": "E-5"}"#)] }
            let id = try #require(try flowJob(daemon)).id
            #expect(try daemon.cli(["jobs", "retry", "\(id)"]).status == 0)
            #expect(try await waitForState(daemon, "done"))
            #expect(hr.count("POST /v1/persons") == 1)
            #expect(hr.count("POST /v1/employees") == 2)
        }
    }

    @Test func withoutOnFailureAFailedFlowStillRecordsItsStepsAndARetryResumesAtTheFailedOne() async throws {
        let hr = HRServer(["POST /v1/employees": [.init(status: 422, body: #"{"message": "bruce@wayneenterprises.com: start date"}"#)]])
        try await hr.run { base in
            let mappings = try Self.mappings { text in
                guard let cut = text.range(of: #",\#n    "on_failure""#), let end = text.range(of: "\n  }\n}", options: .backwards) else {
                    return text
                }
                return String(text[..<cut.lowerBound]) + "\n  }\n}\n" + String(text[end.upperBound...])
            }
            let daemon = daemon(hr: base, mappings: mappings)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await waitForState(daemon, "dead"), "\(daemon.log(tail: 3000))")
            #expect(hr.count("POST /jobylon/result") == 0, "no on_failure in this mapping")
            let id = try #require(try flowJob(daemon)).id
            let show = try daemon.cli(["jobs", "show", "\(id)"])
            #expect(show.output.contains("create_person: succeeded HTTP 201 · person_id=P-1"), "\(show.output)")
            #expect(show.output.contains("create_employee: failed"))
            #expect(!show.output.contains("bruce@wayneenterprises.com"), "quoted back by the HR system, masked")
            hr.scripts.withLock { $0["POST /v1/employees"] = [.init(status: 201, body: #"{"id": "E-5"}"#)] }
            #expect(try daemon.cli(["jobs", "retry", "\(id)"]).status == 0)
            #expect(try await waitForState(daemon, "done"))
            #expect(hr.count("POST /v1/persons") == 1, "the person is not created twice")
        }
    }

    @Test func killNineWhileACreateIsInFlightParksTheFlowInDoubtAndTheOperatorsCaptureCarriesIt() async throws {
        let hr = HRServer(["POST /v1/persons": [.init(status: 201, body: "{}", headers: [("Location", "/v1/persons/P-1")], delay: .seconds(4))]])
        try await hr.run { base in
            let mappings = try Self.mappings()
            let first = daemon(hr: base, mappings: mappings)
            try first.start()
            #expect(try await first.post(try Fixtures.bytes("candidate-new")).status == 200)
            let inFlight = try await first.waitFor { _ in hr.count("POST /v1/persons") == 1 }
            #expect(inFlight)
            first.kill9()
            let second = daemon(hr: base, mappings: mappings, dataDir: first.dataDir)
            try second.start()
            defer { second.stop() }
            #expect(try await waitForState(second, "in_doubt"), "\(second.log(tail: 3000))")
            let id = try #require(try flowJob(second)).id
            let show = try second.cli(["jobs", "show", "\(id)"])
            #expect(show.output.contains("create_person: in doubt (was in flight)"), "\(show.output)")
            // The operator looked in the HR system: the person exists as P-9.
            let resolved = try second.cli(["jobs", "resolve", "\(id)", "--delivered", "--capture", "person_id=P-9"])
            #expect(resolved.status == 0, "\(resolved.output)")
            #expect(try await waitForState(second, "done"), "\(second.log(tail: 3000))")
            #expect(hr.count("GET /v1/employees") == 1, "finished lookups are not sent again")
            #expect(hr.count("POST /v1/persons") == 1, "the create in doubt is not sent again")
            #expect(try JSONParser.parse(Array(try #require(hr.requests.last).body.utf8))["person_id"] == "P-9")
        }
    }

    @Test func killNineDuringAStepThatIsSafeToResendResumesThereWithTheSameKey() async throws {
        let hr = HRServer([
            "POST /v1/employees": [.init(status: 201, body: #"{"id": "E-1"}"#, delay: .seconds(4)), .init(status: 201, body: #"{"id": "E-1"}"#)]
        ])
        try await hr.run { base in
            // The HR system deduplicates employee creates on the key: safe to resend.
            let mappings = try Self.mappings {
                $0.replacingOccurrences(of: #""success": [200, 201],"#, with: #""success": [200, 201], "honours_idempotency_key": true,"#)
            }
            let first = daemon(hr: base, mappings: mappings)
            try first.start()
            #expect(try await first.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await first.waitFor { _ in hr.count("POST /v1/employees") == 1 })
            first.kill9()
            let second = daemon(hr: base, mappings: mappings, dataDir: first.dataDir)
            try second.start()
            defer { second.stop() }
            #expect(try await waitForState(second, "done"), "\(second.log(tail: 3000))")
            #expect(hr.count("POST /v1/persons") == 1, "the person created before the crash is not created again")
            let keys = hr.requests.filter { $0.route == "POST /v1/employees" }.map { $0.headers["idempotency-key"] }
            #expect(keys.count == 2)
            #expect(keys[0] != nil && keys[0] == keys[1])
        }
    }

    @Test func killNineBetweenStepsResumesAtTheNextStepWithoutSendingTheFinishedOnes() async throws {
        let hr = HRServer([
            "POST /v1/employees": [.init(status: 503, body: "{}", headers: [("Retry-After", "2")]), .init(status: 201, body: #"{"id": "E-1"}"#)]
        ])
        try await hr.run { base in
            let mappings = try Self.mappings()
            let first = daemon(hr: base, mappings: mappings)
            try first.start()
            #expect(try await first.post(try Fixtures.bytes("candidate-new")).status == 200)
            // Four steps ended and the fifth waits for its retry: nothing is in flight.
            #expect(
                try await first.waitFor { db in
                    let state = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'hr-new-hire-flow'")
                    return hr.count("POST /v1/employees") == 1 && state == "pending"
                })
            first.kill9()
            let second = daemon(hr: base, mappings: mappings, dataDir: first.dataDir)
            try second.start()
            defer { second.stop() }
            #expect(try await waitForState(second, "done"), "\(second.log(tail: 3000))")
            #expect(hr.count("GET /v1/employees") == 1)
            #expect(hr.count("POST /v1/persons") == 1)
            #expect(hr.count("POST /v1/employees") == 2)
        }
    }

    @Test func aFlowFinishesWithTheMappingVersionItStartedWith() async throws {
        let hr = HRServer([
            "POST /v1/employees": [.init(status: 503, body: "{}", headers: [("Retry-After", "3")]), .init(status: 201, body: #"{"id": "E-1"}"#)]
        ])
        try await hr.run { base in
            let mappings = try Self.mappings()
            let daemon = daemon(hr: base, mappings: mappings)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await daemon.waitFor { _ in hr.count("POST /v1/employees") == 1 })
            // A reload changes the employee body while the flow waits for its retry.
            let file = mappings + "/hr-new-hire-flow.json"
            let changed = try String(contentsOfFile: file, encoding: .utf8)
                .replacingOccurrences(of: #""external_id": "jobylon:{{ candidate.id }}""#, with: #""external_id": "v2:{{ candidate.id }}""#)
            try changed.write(toFile: file, atomically: true, encoding: .utf8)
            kill(try #require(daemon.process?.processIdentifier), SIGHUP)
            #expect(try await waitForState(daemon, "done"), "\(daemon.log(tail: 3000))")
            let bodies = hr.requests.filter { $0.route == "POST /v1/employees" }.map(\.body)
            #expect(bodies.count == 2)
            #expect(bodies.allSatisfy { $0.contains("jobylon:aed6532d") }, "the retry sends what the started flow's version renders")
        }
    }

    @Test func tryRunsTheFlowAgainstASandboxMaskedAndStoresNothing() async throws {
        let hr = HRServer()
        try await hr.run { base in
            var environment = ProcessInfo.processInfo.environment
            environment["HR_TOKEN"] = "hr-secret-token"
            let (status, text) = try Daemon.command(
                [
                    "try", "--mapping", Self.example, "--event", MappingsEndToEndTests.bundledMappings + "/tests/events/candidate-new.json",
                    "--set", "HR_URL=\(base)",
                ], environment: environment, directory: FileManager.default.temporaryDirectory.path)
            #expect(status == 0, "\(text)")
            #expect(text.contains("── step create_person: POST \(base)/v1/persons"))
            #expect(text.contains("answer: HTTP 201 → success"))
            #expect(text.contains(#"captures: {"person_id":"P-1"}"#))
            #expect(text.contains("── step find_person: skipped"))
            for secret in ["SE6281323143611896423859", "bruce@wayneenterprises.com", "hr-secret-token", "Selina Kyle", "Wayne"] {
                #expect(!text.contains(secret), "\(secret) shown")
            }
            #expect(hr.requests.map(\.route) == ["GET /v1/employees", "GET /v1/persons", "POST /v1/persons", "POST /v1/employees"])
            #expect(hr.requests.last?.headers["authorization"] == "Bearer hr-secret-token")
            #expect(!FileManager.default.fileExists(atPath: FileManager.default.temporaryDirectory.path + "/var/bridge.sqlite"))
        }
    }
}
