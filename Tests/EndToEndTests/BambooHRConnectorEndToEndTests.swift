import Foundation
import GRDB
import JSON
import TestServers
import Testing

/// The BambooHR connector pack (`mappings/connectors/bamboohr`) against
/// BambooHR's contract (`BambooHRContractServer`), loaded with `connectors: bamboohr`.
@Suite("Connector: BambooHR", .serialized)
struct BambooHRConnectorEndToEndTests {
    func daemon(_ base: String, mappings: String, key: String = "bamboo-key-0123456789abcdef") -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_CONNECTORS": "bamboohr",
            "BAMBOOHR_API_URL": base, "BAMBOOHR_COMPANY_DOMAIN": "acme", "BAMBOOHR_API_KEY": key,
        ])
    }

    static func hire(_ n: Int, email: String? = nil) throws -> [UInt8] { try ConnectorHires.hire("bamboohr", n, email: email) }

    func jobs(_ daemon: Daemon) throws -> [Row] { try ConnectorHires.jobs(daemon, mapping: "bamboohr-employee") }

    @Test func aHireIsCreatedWithItsManagerAndADuplicateEmailIsAlreadyDone() async throws {
        let server = BambooHRContractServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try FortnoxConnectorEndToEndTests.mappingsDirectory())
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).map { $0["state"] as String } == ["done"] }, "\(daemon.log(tail: 3000))")
            let created = try #require(server.state.withLock { $0.employees.first { $0.workEmail == "bruce1@wayneenterprises.com" } })
            #expect(created.hireDate == "2025-01-01")
            #expect(created.reportsTo == "7", "the manager found in the directory by name is Reports To")
            let capture: String = try jobs(daemon)[0]["capture"] ?? ""
            #expect(capture.contains("\"employee_id\":\"\(created.id)\""), "\(capture)")

            // A hand re-send (a new body for the same hire) creates nothing.
            #expect(try await daemon.post(ConnectorHires.resend(try Self.hire(1))).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).map { $0["state"] as String } == ["done", "skipped"] })
            #expect(server.state.withLock { $0.creates } == 1)

            // Someone already created this person by hand in BambooHR: the 409 is "already done", the id is looked up.
            server.state.withLock {
                $0.employees.append(.init(id: "99", displayName: "Bruce Wayne", workEmail: "bruce.manual@example.com", hireDate: nil, reportsTo: nil))
            }
            #expect(try await daemon.post(try Self.hire(2, email: "bruce.manual@example.com")).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).count == 3 && jobs(daemon)[2]["state"] == "done" })
            let second: String = try jobs(daemon)[2]["capture"] ?? ""
            #expect(second.contains("\"outcome\":\"already_done\"") && second.contains("\"employee_id\":\"99\""), "\(second)")
            #expect(server.state.withLock { $0.jobInfoRows.count } == 1, "the manager of an existing employee is left alone")

            let log = daemon.log(tail: 1_000_000)
            #expect(!log.contains("bamboo-key-0123456789abcdef"))
            #expect(!log.contains("bruce1@wayneenterprises.com") && !log.contains("bruce.manual@example.com"))
        }
    }

    @Test func throttlingAnswersAreWaitedOutAndEveryHireLandsOnce() async throws {
        let server = BambooHRContractServer()
        server.state.withLock { $0.perSecond = 3 }
        try await server.run { base in
            let daemon = daemon(base, mappings: try FortnoxConnectorEndToEndTests.mappingsDirectory())
            try daemon.start()
            defer { daemon.stop() }
            for n in 1...6 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(
                try await daemon.waitFor(timeout: 60) { _ in try jobs(daemon).count == 6 && jobs(daemon).allSatisfy { $0["state"] == "done" } },
                "\(daemon.log(tail: 3000))")
            let state = server.state.withLock { $0 }
            #expect(state.throttled > 0, "the server did throttle")
            #expect(state.creates == 6 && state.duplicates == 0, "each hire created once")
            #expect(state.jobInfoRows.count == 6)
        }
    }

    @Test func aWrongAPIKeyFailsWithoutShowingIt() async throws {
        let server = BambooHRContractServer()
        try await server.run { base in
            let daemon = daemon(base, mappings: try FortnoxConnectorEndToEndTests.mappingsDirectory(), key: "wrong-key-0123456789abcdef")
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).first?["state"] == "dead" }, "\(daemon.log(tail: 3000))")
            let shown = try daemon.cli(["jobs", "list"]).output
            #expect(shown.contains("HTTP 401") && !shown.contains("wrong-key"), "\(shown)")
            #expect(server.state.withLock { $0.creates } == 0)
        }
    }
}
