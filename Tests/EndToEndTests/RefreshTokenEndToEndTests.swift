import Foundation
import GRDB
import Hummingbird
import JSON
import NIOCore
import Synchronization
import TestServers
import Testing

/// A token endpoint that works like Fortnox's: the authorization code gives a
/// refresh token, every refresh spends it and gives a new one (a reused one is
/// refused with `invalid_grant`), access tokens live `accessLifetime` seconds;
/// and an employee API that takes only the newest access token. Before it
/// accepts a hire it checks that the daemon's store already holds the refresh
/// token issued with that access token (commit before use).
final class RotatingTokenServer: Sendable {
    struct State {
        var codes: Set<String> = ["code-1", "code-2", "code-3"]
        var currentRefresh: String?
        var spent: [String] = []
        var reusedRefresh = 0
        var refreshRequests = 0
        var codeRequests: [String] = []
        var access: [String: String] = [:]  // access token → the refresh token issued with it
        var newestAccess: String?
        var employees = 0
        var usedBeforeStored = 0
        var issued = 0
        var accessLifetime = 1
        var refreshLifetime: Int?
        /// Rotates, then waits this long before answering (a refresh whose answer is lost).
        var answerDelay: Duration?
        /// The next refresh never reaches the endpoint's logic (lost on the way): held, then dropped unanswered.
        var loseNextRefresh = false
        var lostRefreshes = 0
        var storedRefresh: (@Sendable () -> String?)?
        var allTokens: [String] = []
    }

    let state = Mutex(State())

    func token(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        let fields = formFields(body)
        let client = "Basic " + Data("fx-client:fx-secret".utf8).base64EncodedString()
        guard request.headers[.authorization] == client else { return Self.json(401, #"{"error": "invalid_client"}"#) }
        let (status, answer, delay): (Int, String, Duration?) = state.withLock { state in
            func issue() -> String {
                state.issued += 1
                let refresh = "rt-\(state.issued)-zyxwvutsrqponmlkjihgfedcba9876543210"
                let access = "at-\(state.issued)-abcdefghijklmnopqrstuvwxyz0123456789"
                state.currentRefresh = refresh
                state.access[access] = refresh
                state.newestAccess = access
                state.allTokens += [refresh, access]
                let expiry = state.refreshLifetime.map { #", "refresh_expires_in": \#($0)"# } ?? ""
                return
                    #"{"access_token": "\#(access)", "refresh_token": "\#(refresh)", "token_type": "Bearer", "expires_in": \#(state.accessLifetime)\#(expiry)}"#
            }
            switch fields["grant_type"] {
            case "authorization_code":
                state.codeRequests.append(fields["redirect_uri"] ?? "")
                guard let code = fields["code"], state.codes.remove(code) != nil else { return (400, #"{"error": "invalid_grant"}"#, nil) }
                return (200, issue(), nil)
            case "refresh_token":
                state.refreshRequests += 1
                let presented = fields["refresh_token"] ?? ""
                if state.loseNextRefresh {
                    state.loseNextRefresh = false
                    state.lostRefreshes += 1
                    return (503, #"{"error": "temporarily_unavailable"}"#, .seconds(3))
                }
                guard presented == state.currentRefresh else {
                    if state.spent.contains(presented) { state.reusedRefresh += 1 }
                    return (400, #"{"error": "invalid_grant", "error_description": "refresh token \#(presented) was used"}"#, nil)
                }
                state.spent.append(presented)
                let delay = state.answerDelay
                state.answerDelay = nil
                return (200, issue(), delay)
            default:
                return (400, #"{"error": "unsupported_grant_type"}"#, nil)
            }
        }
        if let delay { try await Task.sleep(for: delay) }
        return Self.json(status, answer)
    }

    func employee(_ request: Request) async throws -> Response {
        _ = try await request.body.collect(upTo: 1 << 20)
        let presented = (request.headers[.authorization] ?? "").replacingOccurrences(of: "Bearer ", with: "")
        let (issuedWith, stored) = state.withLock { ($0.newestAccess == presented ? $0.access[presented] : nil, $0.storedRefresh) }
        guard let issuedWith else { return Self.json(401, #"{"error": "invalid_token"}"#) }
        let inStore = stored?()
        return state.withLock { state in
            if inStore != issuedWith && state.currentRefresh == issuedWith { state.usedBeforeStored += 1 }
            state.employees += 1
            return Self.json(201, #"{"Employee": {"EmployeeId": "\#(state.employees)"}}"#)
        }
    }

    static func json(_ status: Int, _ text: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/oauth-v1/token") { request, _ in try await self.token(request) }
        router.post("/3/employees") { request, _ in try await self.employee(request) }
        return try await withLocalHTTPServer(router, label: "rotating-oauth", body)
    }
}

@Suite("OAuth2 refresh tokens that rotate on every refresh", .serialized)
struct RefreshTokenEndToEndTests {
    static func mappings() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-refresh-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #"""
        {"name": "fx-employee", "when": {"event": "candidate/new", "if": "candidate.status.group == 20"},
         "rest": {"url": "${FX_URL}/3/employees", "body": {"Employee": {"FirstName": "{{ candidate.first_name }}"}},
                  "honours_idempotency_key": true,
                  "auth": {"oauth2": {"grant": "refresh_token", "credential": "fortnox",
                                      "token_url": "${FX_URL}/oauth-v1/token", "authorization_url": "${FX_URL}/oauth-v1/auth",
                                      "client_id": "fx-client", "client_secret": "${FX_SECRET}", "scope": "salary",
                                      "refresh_token_lifetime": "45d"}}}}
        """#.write(toFile: directory + "/fx-employee.json", atomically: true, encoding: .utf8)
        return directory
    }

    func daemon(_ base: String, mappings: String) -> Daemon {
        Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "FX_URL": base, "FX_SECRET": "fx-secret"])
    }

    func states(_ daemon: Daemon) throws -> [String] {
        try daemon.query { db in try String.fetchAll(db, sql: "SELECT state FROM jobs WHERE mapping = 'fx-employee' ORDER BY id") }
    }

    func storedRefresh(_ daemon: Daemon) -> @Sendable () -> String? {
        let path = daemon.dataDir + "/bridge.sqlite"
        return {
            var config = Configuration()
            config.readonly = true
            return try? DatabaseQueue(path: path, configuration: config).read { db in
                try String.fetchOne(db, sql: "SELECT refresh_token FROM oauth_credentials WHERE name = 'fortnox'")
            }
        }
    }

    static func hire(_ n: Int) throws -> [UInt8] {
        try Fixtures.candidate(id: String(format: "%08d", n) + "-2438-4e33-b15b-1f1a20ba1c16")
    }

    func expectNoToken(_ text: String, _ server: RotatingTokenServer, _ what: String) {
        for token in server.state.withLock({ $0.allTokens }) { #expect(!text.contains(token), "\(what) shows a token") }
        #expect(!text.contains("fx-secret"), "\(what) shows the client secret")
    }

    @Test func authorizedOnceThenRotatedOnEveryRefreshAcrossRestartsAndAKill() async throws {
        let server = RotatingTokenServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try Self.mappings())
            server.state.withLock { $0.storedRefresh = storedRefresh(daemon) }
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            // Before any authorization: held with the command to run, and nothing sent to the endpoint.
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["held"] }, "\(daemon.log(tail: 3000))")
            let reason = try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs") } ?? ""
            #expect(reason.contains("OAuth2 credential fortnox has no refresh token") && reason.contains("oauth authorize fortnox"), "\(reason)")

            let authorized = try await daemon.cliOffPool(["oauth", "authorize", "fortnox", "--code", "code-1"])
            #expect(authorized.status == 0, "\(authorized.output)")
            #expect(authorized.output.contains("1 held job(s) released"), "\(authorized.output)")
            expectNoToken(authorized.output, server, "oauth authorize")
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["done"] }, "\(daemon.log(tail: 3000))")

            // Access tokens live a second: hires posted together and apart refresh again and again, one refresh at a time.
            for n in 2...6 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 6 && states(daemon).allSatisfy { $0 == "done" } })
            try await Task.sleep(for: .seconds(1.2))
            #expect(try await daemon.post(try Self.hire(7)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 7 && states(daemon).allSatisfy { $0 == "done" } })

            // A restart keeps the stored (rotated) refresh token.
            daemon.stop()
            try daemon.start(arguments: ["--log-level", "trace"])
            try await Task.sleep(for: .seconds(1.2))
            #expect(try await daemon.post(try Self.hire(8)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 8 && states(daemon).allSatisfy { $0 == "done" } })
            let middle = server.state.withLock { $0 }
            #expect(middle.reusedRefresh == 0, "a spent refresh token was sent again")
            #expect(middle.refreshRequests >= 2)
            #expect(middle.usedBeforeStored == 0, "an access token was used before its refresh token was committed")
            #expect(middle.employees == 8)
            #expect(storedRefresh(daemon)() == middle.currentRefresh)

            // kill -9 during a refresh that the endpoint never processed: the stored token is still the live one;
            // after the restart the same job refreshes with it and goes through, with no operator.
            try await Task.sleep(for: .seconds(1.2))
            server.state.withLock { $0.loseNextRefresh = true }
            #expect(try await daemon.post(try Self.hire(9)).status == 200)
            #expect(try await daemon.waitFor { _ in server.state.withLock { $0.lostRefreshes } == 1 })
            daemon.kill9()
            try await Task.sleep(for: .seconds(3.5))
            try daemon.start(arguments: ["--log-level", "trace"])
            #expect(
                try await daemon.waitFor(timeout: 40) { _ in try states(daemon).count == 9 && states(daemon).allSatisfy { $0 == "done" } },
                "\(daemon.log(tail: 3000))")
            #expect(server.state.withLock { $0.reusedRefresh } == 0)

            // kill -9 while the endpoint has rotated the token but not yet answered: the new token is lost with the
            // process; after the restart the spent one is refused once, the jobs are held with why, and no loop follows.
            try await Task.sleep(for: .seconds(1.2))
            server.state.withLock { $0.answerDelay = .seconds(3) }
            #expect(try await daemon.post(try Self.hire(10)).status == 200)
            let rotated = server.state.withLock { $0.issued }
            #expect(try await daemon.waitFor { _ in server.state.withLock { $0.issued } > rotated })
            daemon.kill9()
            try await Task.sleep(for: .seconds(3.5))
            try daemon.start(arguments: ["--log-level", "trace"])
            #expect(try await daemon.waitFor(timeout: 40) { _ in try states(daemon).last == "held" }, "\(daemon.log(tail: 3000))")
            let interrupted = try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs ORDER BY id DESC LIMIT 1") } ?? ""
            #expect(interrupted.contains("spent by an earlier refresh whose answer never arrived"), "\(interrupted)")
            let refusedAt = server.state.withLock { $0.refreshRequests }
            #expect(try await daemon.post(try Self.hire(11)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).suffix(2) == ["held", "held"] })
            try await Task.sleep(for: .seconds(1))
            #expect(server.state.withLock { $0.refreshRequests } == refusedAt, "a refused credential is not tried again by every job")
            #expect(daemon.log(tail: 400_000).components(separatedBy: "ALERT oauth2 credential needs authorizing again").count == 2, "one ALERT")
            let status = try daemon.cli(["oauth", "status"])
            #expect(status.output.contains("fortnox\t(shared)") && status.output.contains("needs authorizing: interrupted"), "\(status.output)")

            // Authorizing again releases both; the new chain goes on.
            let again = try await daemon.cliOffPool(["oauth", "authorize", "fortnox", "--code", "code-2"])
            #expect(again.output.contains("2 held job(s) released"), "\(again.output)")
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 11 && states(daemon).allSatisfy { $0 == "done" } })
            let end = server.state.withLock { $0 }
            #expect(end.usedBeforeStored == 0)
            #expect(end.reusedRefresh == 1, "the one spent token sent again is the one whose answer was lost")
            #expect(end.employees == 11)
            let metrics = try await daemon.get("/metrics").text
            #expect(
                metrics.contains(#"jobylon_bridge_oauth_token_requests_total{endpoint="\#(base)",result="refused"} 1"#), "\(metrics.prefix(2000))")

            expectNoToken(daemon.log(tail: 1_000_000), server, "the trace log")
            expectNoToken(try daemon.cli(["jobs", "list"]).output, server, "jobs list")
            expectNoToken(try daemon.cli(["jobs", "show", "10"]).output, server, "jobs show")
            expectNoToken(try daemon.cli(["oauth", "status"]).output, server, "oauth status")
            expectNoToken(metrics, server, "/metrics")
        }
    }

    @Test func theRedirectOnALoopbackPortCompletesTheAuthorization() async throws {
        let server = RotatingTokenServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try Self.mappings())
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Daemon.binary)
            process.arguments = ["oauth", "authorize", "fortnox", "--listen", "127.0.0.1:0", "--timeout", "60s", "--data-dir", daemon.dataDir]
            process.environment = daemon.environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            defer { if process.isRunning { process.terminate() } }
            // The consent address comes first; its redirect_uri and state are what the browser would be sent back with.
            // Read off the cooperative threads: the command talks to the token server in this process.
            let reader = output.fileHandleForReading
            let printed = try await Daemon.offPool {
                var printed = ""
                let deadline = Date().addingTimeInterval(30)
                while !printed.contains("waiting for the redirect"), Date() < deadline {
                    printed += String(decoding: reader.availableData, as: UTF8.self)
                }
                return printed
            }
            let line = try #require(printed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("http") })
            let consent = try #require(URLComponents(string: line))
            #expect(consent.path == "/oauth-v1/auth")
            let query = Dictionary(uniqueKeysWithValues: (consent.queryItems ?? []).map { ($0.name, $0.value ?? "") })
            #expect(query["response_type"] == "code" && query["client_id"] == "fx-client" && query["scope"] == "salary")
            let redirect = try #require(query["redirect_uri"])
            #expect(redirect.hasPrefix("http://127.0.0.1:") && redirect.hasSuffix("/callback"))
            // A redirect with another state is refused and the wait goes on; the right one is taken.
            let stray = try await daemon.curl.perform(
                .init(method: "GET", url: "\(redirect)?code=code-2&state=not-this-one", totalTimeoutMilliseconds: 10_000))
            #expect(stray.status == 400)
            #expect(process.isRunning)
            let answer = try await daemon.curl.perform(
                .init(method: "GET", url: "\(redirect)?code=code-3&state=\(query["state"] ?? "")", totalTimeoutMilliseconds: 10_000))
            #expect(answer.status == 200)
            #expect(String(decoding: answer.body, as: UTF8.self).hasPrefix("Authorized"))
            // The end of its output is its exit (the token exchange happens before).
            let rest = try await Daemon.offPool { String(decoding: reader.readDataToEndOfFile(), as: UTF8.self) }
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(printed)\(rest)")
            #expect(rest.contains("stored the refresh token of credential fortnox"), "\(rest)")
            #expect(server.state.withLock { $0.codeRequests } == [redirect], "one exchange (code-3), naming the same redirect URI")
            #expect(storedRefresh(daemon)() == server.state.withLock { $0.currentRefresh })
            expectNoToken(printed + rest, server, "oauth authorize --listen")
        }
    }

    @Test func aCompanysOwnCredentialIsNeverUsedForAnotherCompany() async throws {
        let companyA = "04b9171e-6d74-451f-a8e3-9bc3cf2b2954"
        let companyB = "11111111-6d74-451f-a8e3-9bc3cf2b2954"
        let server = RotatingTokenServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try Self.mappings())
            let authorized = try await daemon.cliOffPool(["oauth", "authorize", "fortnox", "--company", companyA, "--code", "code-1"])
            #expect(authorized.output.contains("for company \(companyA)"), "\(authorized.output)")
            try daemon.start()
            defer { daemon.stop() }
            let hireB = String(decoding: try Self.hire(2), as: UTF8.self).replacingOccurrences(of: companyA, with: companyB)
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.post(Array(hireB.utf8)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).sorted() == ["done", "held"] }, "\(daemon.log(tail: 3000))")
            let held = try daemon.query { db in
                try Row.fetchOne(db, sql: "SELECT company_id, last_error FROM jobs WHERE state = 'held'")
            }
            #expect(held?["company_id"] as String? == companyB)
            #expect((held?["last_error"] as String?)?.contains("has no refresh token for this job's company") == true)
            #expect(server.state.withLock { $0.employees } == 1)
            let status = try daemon.cli(["oauth", "status"])
            #expect(status.output.contains("fortnox\t\(companyA)"), "\(status.output)")
        }
    }

    @Test func aRefreshTokenNearItsExpiryIsRenewedAndAlertedWithoutAHire() async throws {
        let server = RotatingTokenServer()
        // The endpoint gives refresh tokens 3 days: inside the week's renewal window, so each is due at once.
        server.state.withLock { $0.refreshLifetime = 3 * 86_400 }
        try await server.run { base in
            let daemon = daemon(base, mappings: try Self.mappings())
            let authorized = try await daemon.cliOffPool(["oauth", "authorize", "fortnox", "--code", "code-1"])
            #expect(authorized.status == 0, "\(authorized.output)")
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.waitFor { _ in server.state.withLock { $0.refreshRequests } >= 1 }, "renewed without a hire")
            #expect(
                try await daemon.waitFor { _ in daemon.log(tail: 100_000).contains("ALERT oauth2 refresh token expires soon and could not be renewed")
                })
            let log = daemon.log(tail: 100_000)
            #expect(log.contains("expires_in=2 day(s)") || log.contains("expires_in=3 day(s)"), "\(log.suffix(2000))")
            #expect(log.contains("fix=jobylon-bridge oauth authorize fortnox"), "\(log.suffix(2000))")
            let metrics = try await daemon.get("/metrics").text
            #expect(
                metrics.contains(#"jobylon_bridge_oauth_refresh_token_expiry_seconds{credential="fortnox",company="(shared)"}"#),
                "\(metrics.prefix(3000))")
            #expect(server.state.withLock { $0.reusedRefresh } == 0)
            #expect(storedRefresh(daemon)() == server.state.withLock { $0.currentRefresh })
            expectNoToken(log, server, "the log")
        }
    }
}
