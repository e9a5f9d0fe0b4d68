import Foundation
import GRDB
import JSON
import TestServers
import Testing

/// The Fortnox connector pack (`mappings/connectors/fortnox`) against
/// Fortnox's contract (`FortnoxContractServer`), loaded as an operator would
/// load it: `connectors: fortnox` beside an otherwise empty mappings directory.
@Suite("Connector: Fortnox", .serialized)
struct FortnoxConnectorEndToEndTests {
    static func mappingsDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-fortnox-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: directory + "/connectors", withDestinationPath: MappingsEndToEndTests.bundledMappings + "/connectors")
        return directory
    }

    func daemon(_ base: String, mappings: String, dataDir: String? = nil) -> Daemon {
        Daemon(
            dataDir: dataDir,
            environment: [
                "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_CONNECTORS": "fortnox",
                "FORTNOX_API_URL": base, "FORTNOX_TOKEN_URL": base + "/oauth-v1/token", "FORTNOX_CLIENT_ID": "fx-client-id",
                "FORTNOX_CLIENT_SECRET": "fx-client-secret",
            ])
    }

    static func hire(_ n: Int) throws -> [UInt8] { try ConnectorHires.hire("fortnox", n, uniqueEmail: false) }

    func states(_ daemon: Daemon) throws -> [String] {
        try daemon.query { db in try String.fetchAll(db, sql: "SELECT state FROM jobs WHERE mapping = 'fortnox-employee' ORDER BY id") }
    }

    @Test func hiresAreCreatedOnceWithinTheRateLimitAndTheirTokensRotate() async throws {
        let server = FortnoxContractServer()
        // Access tokens of 4 s here (3600 s in Fortnox): the connector refreshes several times during the test
        // (a token is renewed a tenth of its life early, and a send may wait up to 2 s for the rate limit).
        server.state.withLock { $0.tokens.accessLifetime = 4 }
        try await server.run { base in
            let mappings = try Self.mappingsDirectory()
            let daemon = daemon(base, mappings: mappings)
            let authorized = try await daemon.cliOffPool(["oauth", "authorize", "fortnox", "--code", "fortnox-code-1"])
            #expect(authorized.status == 0, "\(authorized.output)")
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }

            // One hire: looked up (404), then created with every field as Fortnox wants it.
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["done"] }, "\(daemon.log(tail: 3000))")
            let created = try #require(server.state.withLock { $0.employees["JB000000012438"] })
            #expect(created["PersonalIdentityNumber"] == "19811218-9876")
            #expect(created["EmploymentDate"] == "2025-01-01")
            #expect(created["ClearingNo"] == "83279" && created["BankAccountNo"] == "1234567890")
            #expect(created["Email"] == "bruce@wayneenterprises.com")
            let capture = try daemon.query { db in try String.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'fortnox-employee'") }
            #expect(capture?.contains("\"employee_id\":\"JB000000012438\"") == true, "\(capture ?? "")")

            // A hand re-send (a new body for the same hire) creates nothing.
            #expect(try await daemon.post(ConnectorHires.resend(try Self.hire(1))).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon).count == 2 && !states(daemon).contains("pending") })

            // Twenty-five hires at once (fifty requests), paced at 25 per 6 s: each is created once. (A loaded machine can
            // bunch arrivals into one of the server's windows; its 429 then pauses the company's requests 5 s.)
            for n in 2...26 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(
                try await daemon.waitFor(timeout: 90) { _ in try states(daemon).filter { $0 == "done" }.count == 26 },
                "\((try? daemon.cli(["jobs", "list"]).output) ?? "")")
            let after = server.state.withLock { $0 }
            #expect(after.creates == 26)
            #expect(after.tokens.reusedRefresh == 0)
            #expect(after.tokens.refreshes >= 2, "expired access tokens were refreshed")

            let log = daemon.log(tail: 2_000_000)
            for token in after.tokens.issuedTokens { #expect(!log.contains(token)) }
            #expect(!log.contains("fx-client-secret"))
            #expect(!log.contains("19811218-9876") && !log.contains("811218-9876") && !log.contains("1234567890"), "personal data in the log")
            let shown = try daemon.cli(["jobs", "show", "1"]).output
            #expect(!shown.contains("19811218-9876") && !shown.contains("1234567890") && !shown.contains("83279"), "\(shown)")
        }
    }

    @Test func anEmployeeFortnoxAlreadyHasIsNotCreatedAgainAfterTheStoreIsLost() async throws {
        let server = FortnoxContractServer()
        try await server.run { base in
            let mappings = try Self.mappingsDirectory()
            let first = daemon(base, mappings: mappings)
            #expect(try await first.cliOffPool(["oauth", "authorize", "fortnox", "--code", "fortnox-code-1"]).status == 0)
            try first.start()
            #expect(try await first.post(try Self.hire(7)).status == 200)
            #expect(try await first.waitFor { _ in try states(first) == ["done"] })
            first.stop()
            // A new data directory (a lost store, a second installation): the ledger knows nothing, the lookup does.
            let second = daemon(base, mappings: mappings)
            #expect(try await second.cliOffPool(["oauth", "authorize", "fortnox", "--code", "fortnox-code-2"]).status == 0)
            try second.start()
            defer { second.stop() }
            #expect(try await second.post(try Self.hire(7)).status == 200)
            #expect(try await second.waitFor { _ in try states(second) == ["done"] }, "\(second.log(tail: 3000))")
            #expect(server.state.withLock { $0.creates } == 1)
            let progress = try second.query { db in try String.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'fortnox-employee'") }
            #expect(progress?.contains("\"outcome\":\"finished\"") == true, "\(progress ?? "")")
        }
    }
}
