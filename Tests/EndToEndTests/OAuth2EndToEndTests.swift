import Foundation
import GRDB
import Hummingbird
import JSON
import NIOCore
import Synchronization
import TestServers
import Testing

/// An HR API on 127.0.0.1 behind OAuth2 client credentials: a token endpoint
/// that checks the client (HTTP basic) and issues numbered tokens, and an
/// employee endpoint that takes only the newest token that was not revoked.
final class OAuthServer: Sendable {
    struct State {
        var secret = "s3cret-client"
        var issued: [String] = []
        var revoked: Set<String> = []
        var tokenRequests: [String] = []
        var employees: [String] = []
    }

    let state = Mutex(State())

    func token(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        let authorization = request.headers[.authorization] ?? ""
        let expected = "Basic " + Data("hr-client:\(state.withLock { $0.secret })".utf8).base64EncodedString()
        let answer: (Int, String) = state.withLock { state in
            state.tokenRequests.append(body)
            guard authorization == expected, body.contains("grant_type=client_credentials") else {
                return (401, #"{"error": "invalid_client", "error_description": "client hr-client with secret \#(authorization) unknown"}"#)
            }
            let token = "tok-\(state.issued.count + 1)-abcdefghijklmnopqrstuvwxyz0123456789"
            state.issued.append(token)
            return (200, #"{"access_token": "\#(token)", "token_type": "Bearer", "expires_in": 3600}"#)
        }
        return Response(
            status: .init(code: answer.0), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: answer.1)))
    }

    func employee(_ request: Request) async throws -> Response {
        _ = try await request.body.collect(upTo: 1 << 20)
        let authorization = request.headers[.authorization] ?? ""
        let status: Int = state.withLock { state in
            guard let token = state.issued.last, authorization == "Bearer \(token)", !state.revoked.contains(token) else { return 401 }
            state.employees.append(token)
            return 201
        }
        return Response(
            status: .init(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: status == 201 ? #"{"employeeId": "E-1"}"# : #"{"error": "invalid_token"}"#)))
    }

    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/oauth/token") { request, _ in try await self.token(request) }
        router.post("/v1/employees") { request, _ in try await self.employee(request) }
        return try await withLocalHTTPServer(router, label: "oauth", body)
    }
}

@Suite("OAuth2 client credentials against a token endpoint", .serialized)
struct OAuth2EndToEndTests {
    static func mappings() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-oauth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #"""
        {"name": "hr-employee", "when": {"event": "candidate/new", "if": "candidate.status.group == 20"},
         "rest": {"url": "${HR_URL}/v1/employees", "body": {"name": "{{ candidate.first_name }}"},
                  "auth": {"oauth2": {"token_url": "${HR_URL}/oauth/token", "client_id": "hr-client",
                                      "client_secret": "${HR_CLIENT_SECRET}", "scope": "employees:write"}}}}
        """#.write(toFile: directory + "/hr-employee.json", atomically: true, encoding: .utf8)
        return directory
    }

    func daemon(_ base: String, mappings: String, secrets: String) -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_SECRETS_DIR": secrets, "HR_URL": base,
        ])
    }

    static func secrets(_ secret: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-oauth-secrets-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try secret.write(toFile: directory + "/HR_CLIENT_SECRET", atomically: true, encoding: .utf8)
        return directory
    }

    func states(_ daemon: Daemon) throws -> [String] {
        try daemon.query { db in try String.fetchAll(db, sql: "SELECT state FROM jobs WHERE mapping = 'hr-employee' ORDER BY id") }
    }

    @Test func oneTokenServesEveryHireAndARevokedOneIsReplacedOnce() async throws {
        let server = OAuthServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try Self.mappings(), secrets: try Self.secrets("s3cret-client"))
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            for n in 1...3 {
                #expect(try await daemon.post(try Fixtures.candidate(id: "0000000\(n)-2438-4e33-b15b-1f1a20ba1c16")).status == 200)
            }
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["done", "done", "done"] }, "\(daemon.log(tail: 3000))")
            let first = server.state.withLock { $0 }
            #expect(first.issued.count == 1, "one token for every send while it is valid")
            #expect(first.tokenRequests.first?.contains("scope=employees%3Awrite") == true)
            #expect(first.employees.count == 3)
            // The HR system revokes the token early: the next send gets a 401, fetches a new token and is resent once.
            server.state.withLock { $0.revoked.insert($0.issued[0]) }
            #expect(try await daemon.post(try Fixtures.candidate(id: "00000004-2438-4e33-b15b-1f1a20ba1c16")).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 4 && states(daemon).allSatisfy { $0 == "done" } })
            let after = server.state.withLock { $0 }
            #expect(after.issued.count == 2)
            #expect(after.employees.last == after.issued[1])
            let log = daemon.log(tail: 200_000)
            #expect(!log.contains("s3cret-client"))
            for token in after.issued { #expect(!log.contains(token)) }
            let jobs = try daemon.cli(["jobs", "show", "4"])
            for token in after.issued { #expect(!jobs.output.contains(token)) }
            let metrics = try await daemon.get("/metrics").text
            #expect(metrics.contains(#"jobylon_bridge_oauth_token_requests_total{endpoint="\#(base)",result="issued"} 2"#), "\(metrics.prefix(3000))")
            for token in after.issued { #expect(!metrics.contains(token)) }
        }
    }

    @Test func refusedClientCredentialsHoldTheJobsUntilAReloadFixesTheSecret() async throws {
        let server = OAuthServer()
        try await server.run { base in
            let secrets = try Self.secrets("wrong-secret")
            let daemon = daemon(base, mappings: try Self.mappings(), secrets: secrets)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["held"] }, "\(daemon.log(tail: 3000))")
            let reason = try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE mapping = 'hr-employee'") }
            #expect(reason?.hasPrefix("token endpoint refused the client credentials: HTTP 401 invalid_client: fix") == true, "\(reason ?? "")")
            #expect(reason?.contains("wrong-secret") == false)
            #expect(server.state.withLock { $0.tokenRequests.count } == 1, "held, not retried in a loop")
            try "s3cret-client".write(toFile: secrets + "/HR_CLIENT_SECRET", atomically: true, encoding: .utf8)
            kill(try #require(daemon.process?.processIdentifier), SIGHUP)
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["done"] }, "\(daemon.log(tail: 3000))")
            #expect(server.state.withLock { $0.employees.count } == 1)
            #expect(!daemon.log(tail: 100_000).contains("s3cret-client"))
        }
    }
}
