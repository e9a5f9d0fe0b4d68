import Foundation
import GRDB
import Hummingbird
import JSON
import NIOCore
import Synchronization
import TestServers
import Testing

/// An HR API on 127.0.0.1 where every company has its own bearer token:
/// a request whose token is not its company's is refused with 401.
final class PerCompanyTokenServer: Sendable {
    let tokens: [String: String]
    let accepted = Mutex<[String: String]>([:])

    init(tokens: [String: String]) { self.tokens = tokens }

    func respond(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
        let company = (try? JSONParser.parse(Array(body.utf8)))?["company"]?.stringValue ?? "?"
        let authorization = request.headers[.authorization] ?? ""
        let ok = tokens[company].map { authorization == "Bearer \($0)" } ?? false
        if ok { accepted.withLock { $0[company] = authorization } }
        return Response(
            status: ok ? .created : .unauthorized, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: ok ? #"{"id": "E-1"}"# : #"{"error": "token \#(authorization) is not this company's"}"#)))
    }

    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/employees") { request, _ in try await self.respond(request) }
        return try await withLocalHTTPServer(router, label: "per-company", body)
    }
}

@Suite("Per-company credentials from the secrets directory", .serialized)
struct CompanyCredentialsEndToEndTests {
    static let companyA = "04b9171e-6d74-451f-a8e3-9bc3cf2b2954"
    static let companyB = "11111111-6d74-451f-a8e3-9bc3cf2b2954"
    static let companyC = "22222222-6d74-451f-a8e3-9bc3cf2b2954"
    static let tokens = [companyA: "tok-a-1234567890abcdef", companyB: "tok-b-1234567890abcdef", companyC: "tok-c-1234567890abcdef"]

    static func directory(_ label: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jb-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func hire(company: String, candidate n: Int) throws -> [UInt8] {
        let id = String(format: "%08d-2438-4e33-b15b-1f1a20ba1c16", n)
        let text = String(decoding: try Fixtures.candidate(id: id), as: UTF8.self).replacingOccurrences(of: companyA, with: company)
        return Array(text.utf8)
    }

    /// The mapping: one bearer `${HR_TOKEN}`, the company id in the body.
    static func mappings() throws -> String {
        let mappings = try directory("company-mappings")
        try #"""
        {"name": "hr-employee", "when": {"event": "candidate/new", "if": "candidate.status.group == 20"},
         "rest": {"url": "${HR_URL}/v1/employees", "body": {"company": "{{ company.id }}"}, "auth": {"bearer": "${HR_TOKEN}"}}}
        """#.write(toFile: mappings + "/hr-employee.json", atomically: true, encoding: .utf8)
        return mappings
    }

    /// A secrets directory with `HR_TOKEN` for `companies` only.
    static func secrets(for companies: [String]) throws -> String {
        let secrets = try directory("company-secrets")
        for company in companies {
            try FileManager.default.createDirectory(atPath: "\(secrets)/companies/\(company)", withIntermediateDirectories: true)
            try (tokens[company] ?? "").write(toFile: "\(secrets)/companies/\(company)/HR_TOKEN", atomically: true, encoding: .utf8)
        }
        return secrets
    }

    @Test func eachCompanysHireGoesWithItsOwnTokenAndACompanyWithoutOneIsHeldUntilItHasOne() async throws {
        let server = PerCompanyTokenServer(tokens: Self.tokens)
        try await server.run { base in
            let mappings = try Self.mappings()
            let secrets = try Self.secrets(for: [Self.companyA, Self.companyB])
            // A shared value of the same name is never a fallback for a company without its own.
            let daemon = Daemon(environment: [
                "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_SECRETS_DIR": secrets, "HR_URL": base,
                "HR_TOKEN": "tok-shared-1234567890abcdef",
            ])
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            for (n, company) in [Self.companyA, Self.companyB, Self.companyC].enumerated() {
                #expect(try await daemon.post(try Self.hire(company: company, candidate: n + 1)).status == 200)
            }
            func state(_ company: String) throws -> String? {
                try daemon.query { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE mapping = 'hr-employee' AND company_id = ?", arguments: [company])
                }
            }
            #expect(
                try await daemon.waitFor { _ in
                    try state(Self.companyA) == "done" && state(Self.companyB) == "done" && state(Self.companyC) == "held"
                }, "\(daemon.log(tail: 3000))")
            let reason = try daemon.query { db in
                try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE company_id = ?", arguments: [Self.companyC])
            }
            let expected = "missing variable HR_TOKEN for this job's company (no file companies/<company id>/HR_TOKEN in the secrets directory)"
            #expect(reason == expected, "\(reason ?? "")")
            // As the operator reads it: the reason in full, the company in the effect key.
            let listed = try daemon.cli(["jobs", "list"]).output.split(separator: "\n").first { $0.contains(Self.companyC) }
            #expect(listed?.hasSuffix(expected) == true, "\(listed ?? "")")
            #expect(server.accepted.withLock { $0[Self.companyC] } == nil, "company C's hire was never sent with another token")

            try FileManager.default.createDirectory(atPath: "\(secrets)/companies/\(Self.companyC)", withIntermediateDirectories: true)
            try (Self.tokens[Self.companyC] ?? "").write(
                toFile: "\(secrets)/companies/\(Self.companyC)/HR_TOKEN", atomically: true, encoding: .utf8)
            kill(try #require(daemon.process?.processIdentifier), SIGHUP)
            #expect(try await daemon.waitFor { _ in try state(Self.companyC) == "done" }, "\(daemon.log(tail: 3000))")
            #expect(server.accepted.withLock { $0 } == Self.tokens.mapValues { "Bearer \($0)" })
            let log = daemon.log(tail: 1_000_000)
            for token in Self.tokens.values + ["tok-shared-1234567890abcdef"] { #expect(!log.contains(token), "a token in the trace log") }
        }
    }

    @Test func checkCountsAPerCompanyNameAsSetAndTryUsesTheEventFilesCompany() async throws {
        let server = PerCompanyTokenServer(tokens: Self.tokens)
        try await server.run { base in
            let mappings = try Self.mappings()
            let secrets = try Self.secrets(for: [Self.companyA])
            var environment = ProcessInfo.processInfo.environment
            environment["JOBYLON_BRIDGE_SECRETS_DIR"] = nil
            environment["HR_URL"] = base
            let unset = try Daemon.command(["check", mappings], environment: environment)
            #expect(unset.output.contains("jobs will be held: missing variable HR_TOKEN"), "\(unset.output)")
            let checked = try Daemon.command(["check", mappings, "--secrets-dir", secrets, "--strict"], environment: environment)
            #expect(checked.status == 0, "\(checked.output)")
            environment["JOBYLON_BRIDGE_SECRETS_DIR"] = secrets
            #expect(try Daemon.command(["check", mappings, "--strict"], environment: environment).status == 0)

            let event = try Self.directory("company-event") + "/hire.json"
            try Data(try Self.hire(company: Self.companyA, candidate: 1)).write(to: URL(fileURLWithPath: event))
            let tried = try Daemon.command(
                ["try", "--mapping", mappings + "/hr-employee.json", "--event", event, "--secrets-dir", secrets], environment: environment,
                directory: FileManager.default.temporaryDirectory.path)
            #expect(tried.status == 0, "\(tried.output)")
            #expect(tried.output.contains("answer: HTTP 201"), "\(tried.output)")
            #expect(server.accepted.withLock { $0 } == [Self.companyA: "Bearer \(Self.tokens[Self.companyA] ?? "")"])
            #expect(!tried.output.contains(Self.tokens[Self.companyA] ?? "-"))
        }
    }
}
