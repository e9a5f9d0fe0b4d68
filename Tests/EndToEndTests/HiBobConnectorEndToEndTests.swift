import Foundation
import GRDB
import JSON
import TestServers
import Testing

/// The HiBob connector pack (`mappings/connectors/hibob`) against HiBob's
/// contract (`HiBobContractServer`), loaded with `connectors: hibob`.
@Suite("Connector: HiBob", .serialized)
struct HiBobConnectorEndToEndTests {
    static let token = "hibob-token-0123456789abcdef"

    func daemon(_ base: String, mappings: String, token: String = Self.token) -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_CONNECTORS": "hibob",
            "HIBOB_API_URL": base, "HIBOB_SERVICE_USER_ID": "SERVICE-4711", "HIBOB_SERVICE_USER_TOKEN": token, "HIBOB_SITE": "Stockholm",
        ])
    }

    static func hire(_ n: Int) throws -> [UInt8] { try ConnectorHires.hire("hibob", n) }

    func jobs(_ daemon: Daemon) throws -> [Row] { try ConnectorHires.jobs(daemon, mapping: "hibob-employee") }

    @Test func aHireIsCreatedWithManagerAndBankAccountOnceAndFoundAgainAfterTheStoreIsLost() async throws {
        let server = HiBobContractServer()
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let daemon = daemon(base, mappings: mappings)
            try daemon.start(arguments: ["--log-level", "trace"])
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).map { $0["state"] as String } == ["done"] }, "\(daemon.log(tail: 3000))")
            let created = try #require(server.state.withLock { $0.employees.first { $0.email == "bruce1@wayneenterprises.com" } })
            #expect(created.startDate == "2025-01-01" && created.site == "Stockholm")
            #expect(created.reportsTo == "3332883894235038486", "the manager found by name is Reports To")
            #expect(created.bankAccounts.first?["iban"]?.stringValue == "SE6281323143611896423859")
            let capture: String = try jobs(daemon)[0]["capture"] ?? ""
            #expect(capture.contains("\"employee_id\":\"\(created.id)\""), "\(capture)")

            // A hand re-send creates nothing.
            #expect(try await daemon.post(ConnectorHires.resend(try Self.hire(1))).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).count == 2 && jobs(daemon)[1]["state"] == "skipped" })
            let log = daemon.log(tail: 2_000_000)
            #expect(!log.contains(Self.token))
            #expect(!log.contains("SE6281323143611896423859") && !log.contains("bruce1@wayneenterprises.com"), "personal data in the log")
            let shown = try daemon.cli(["jobs", "show", "1"]).output
            #expect(!shown.contains("SE6281323143611896423859") && !shown.contains("bruce1@wayneenterprises.com"), "\(shown)")
            daemon.stop()

            // A new data directory (a lost store, a second installation): the e-mail search finds the employee.
            let second = self.daemon(base, mappings: mappings)
            try second.start()
            defer { second.stop() }
            #expect(try await second.post(try Self.hire(1)).status == 200)
            #expect(try await second.waitFor { _ in try jobs(second).first?["state"] == "done" }, "\(second.log(tail: 3000))")
            #expect(server.state.withLock { $0.creates } == 1)
            let found: String = try jobs(second)[0]["capture"] ?? ""
            #expect(found.contains("\"outcome\":\"finished\"") && found.contains("\"employee_id\":\"\(created.id)\""), "\(found)")
        }
    }

    @Test func theSearchLimitIsWaitedOutAndAWrongTokenFailsWithoutShowingIt() async throws {
        let server = HiBobContractServer()
        // Four searches a minute here (50 in HiBob): three hires need six.
        server.state.withLock { $0.searchesPerMinute = 4 }
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let daemon = daemon(base, mappings: mappings)
            try daemon.start()
            for n in 1...3 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(
                try await daemon.waitFor(timeout: 150) { _ in try jobs(daemon).count == 3 && jobs(daemon).allSatisfy { $0["state"] == "done" } },
                "\((try? daemon.cli(["jobs", "list"]).output) ?? "")")
            let state = server.state.withLock { $0 }
            #expect(state.throttled > 0, "the search limit was reached")
            #expect(state.creates == 3 && state.duplicates == 0)
            daemon.stop()

            let wrong = self.daemon(base, mappings: mappings, token: "wrong-token-0123456789abcdef")
            try wrong.start()
            defer { wrong.stop() }
            #expect(try await wrong.post(try Self.hire(9)).status == 200)
            #expect(try await wrong.waitFor { _ in try jobs(wrong).first?["state"] == "dead" }, "\(wrong.log(tail: 3000))")
            let shown = try wrong.cli(["jobs", "list"]).output
            #expect(shown.contains("HTTP 401") && !shown.contains("wrong-token"), "\(shown)")
        }
    }
}
