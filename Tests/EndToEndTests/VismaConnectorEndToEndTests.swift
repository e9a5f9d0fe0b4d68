import Foundation
import GRDB
import JSON
import TestServers
import Testing

/// The Visma / Spiris Lön connector pack (`mappings/connectors/visma`) against
/// the payroll API's contract (`VismaPayrollContractServer`), loaded with `connectors: visma`.
@Suite("Connector: Visma / Spiris Lön", .serialized)
struct VismaConnectorEndToEndTests {
    func daemon(_ base: String, mappings: String) -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_CONNECTORS": "visma",
            "VISMA_API_URL": base, "VISMA_TOKEN_URL": base + "/connect/token", "VISMA_CLIENT_ID": "vls-client-id",
            "VISMA_CLIENT_SECRET": "vls-client-secret",
        ])
    }

    /// Hire `n` with a valid personal identity number of its own (born 1981-12-18, birth number `n`).
    static func hire(_ n: Int) throws -> [UInt8] {
        let birth = String(format: "811218%03d", n)
        let digits = birth.compactMap { $0.wholeNumberValue }
        let sum = digits.enumerated().map { index, digit in
            let product = digit * (index % 2 == 0 ? 2 : 1)
            return product / 10 + product % 10
        }.reduce(0, +)
        let number = "\(birth.prefix(6))-\(birth.suffix(3))\((10 - sum % 10) % 10)"
        return try ConnectorHires.hire("visma", n, uniqueEmail: false, replacing: ["811218-9876": number])
    }

    func states(_ daemon: Daemon) throws -> [String] {
        try daemon.query { db in try String.fetchAll(db, sql: "SELECT state FROM jobs WHERE mapping = 'visma-employee' ORDER BY id") }
    }

    @Test func hiresAreCreatedOnceWithinTheQuotaAndTheirRefreshTokensRotate() async throws {
        let server = VismaPayrollContractServer()
        // Access tokens of 4 s and a quota of 3 requests a minute per endpoint here (3600 s and 600 in Visma).
        server.state.withLock {
            $0.tokens.accessLifetime = 4
            $0.perMinute = 3
        }
        try await server.run { base in
            let daemon = daemon(base, mappings: try FortnoxConnectorEndToEndTests.mappingsDirectory())
            let authorized = try await daemon.cliOffPool(["oauth", "authorize", "visma", "--code", "visma-code-1"])
            #expect(authorized.status == 0, "\(authorized.output)")
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }

            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try states(daemon) == ["done"] }, "\(daemon.log(tail: 3000))")
            let created = try #require(server.state.withLock { $0.employees.first })
            #expect(created["IdentificationNumber"]?.stringValue == "198112180016")
            #expect(created["Contract"]?["ContractStartDate"]?.stringValue == "2025-01-01")
            #expect(created["Contract"]?["SalaryType"]?.numberValue?.int64Value == 1)
            let capture = try daemon.query { db in try String.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'visma-employee'") }
            #expect(capture?.contains("\"employee_id\":\"\(created["Id"]?.stringValue ?? "?")\"") == true, "\(capture ?? "")")

            // A hand re-send creates nothing; three more hires overrun the quota of the minute: the 429 pauses, all land once.
            #expect(try await daemon.post(ConnectorHires.resend(try Self.hire(1))).status == 200)
            for n in 2...4 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(
                try await daemon.waitFor(timeout: 150) { _ in try states(daemon).filter { $0 == "done" }.count == 4 },
                "\((try? daemon.cli(["jobs", "list"]).output) ?? "")")
            let after = server.state.withLock { $0 }
            #expect(after.creates == 4)
            #expect(after.throttled > 0, "the quota was reached")
            #expect(after.tokens.reusedRefresh == 0)
            #expect(after.tokens.refreshes >= 2, "expired access tokens were refreshed")

            let log = daemon.log(tail: 2_000_000)
            for token in after.tokens.issuedTokens { #expect(!log.contains(token)) }
            #expect(!log.contains("vls-client-secret"))
            #expect(!log.contains("198112180016") && !log.contains("811218-0016"), "personal data in the log")
            let shown = try daemon.cli(["jobs", "show", "1"]).output
            #expect(!shown.contains("198112180016"), "\(shown)")
        }
    }

    @Test func anEmployeeVismaAlreadyHasIsNotCreatedAgainAfterTheStoreIsLost() async throws {
        let server = VismaPayrollContractServer()
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let first = daemon(base, mappings: mappings)
            #expect(try await first.cliOffPool(["oauth", "authorize", "visma", "--code", "visma-code-1"]).status == 0)
            try first.start()
            #expect(try await first.post(try Self.hire(7)).status == 200)
            #expect(try await first.waitFor { _ in try states(first) == ["done"] }, "\(first.log(tail: 3000))")
            first.stop()
            // A new data directory (a lost store, a second installation): the lookup by personal identity number finds the employee.
            let second = daemon(base, mappings: mappings)
            #expect(try await second.cliOffPool(["oauth", "authorize", "visma", "--code", "visma-code-2"]).status == 0)
            try second.start()
            defer { second.stop() }
            #expect(try await second.post(try Self.hire(7)).status == 200)
            #expect(try await second.waitFor { _ in try states(second) == ["done"] }, "\(second.log(tail: 3000))")
            #expect(server.state.withLock { $0.creates } == 1)
            let progress = try second.query { db in try String.fetchOne(db, sql: "SELECT capture FROM jobs WHERE mapping = 'visma-employee'") }
            #expect(progress?.contains("\"outcome\":\"finished\"") == true, "\(progress ?? "")")
        }
    }
}
