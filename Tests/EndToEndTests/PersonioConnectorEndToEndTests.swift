import Foundation
import GRDB
import JSON
import TestServers
import Testing

/// The Personio connector pack (`mappings/connectors/personio`) against
/// Personio's API v2 contract (`PersonioContractServer`), loaded with `connectors: personio`.
@Suite("Connector: Personio", .serialized)
struct PersonioConnectorEndToEndTests {
    static let secret = "personio-secret-abcdefghij"

    func daemon(_ base: String, mappings: String, secret: String = Self.secret) -> Daemon {
        Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_CONNECTORS": "personio",
            "PERSONIO_API_URL": base, "PERSONIO_CLIENT_ID": "papi-client-0123456789", "PERSONIO_CLIENT_SECRET": secret,
            "PERSONIO_IBAN_ATTRIBUTE": "dynamic_306",
        ])
    }

    static func hire(_ n: Int) throws -> [UInt8] { try ConnectorHires.hire("personio", n) }

    func jobs(_ daemon: Daemon) throws -> [Row] { try ConnectorHires.jobs(daemon, mapping: "personio-employee") }

    func allDone(_ daemon: Daemon, count: Int) throws -> Bool {
        let rows = try jobs(daemon)
        return rows.count == count && rows.allSatisfy { $0["state"] == "done" }
    }

    @Test func aHireIsCreatedWithSupervisorAndIBANOnceAndItsTokenIsRenewed() async throws {
        let server = PersonioContractServer()
        // Access tokens of 3 s here (a day in Personio): the later hires need a new one.
        server.state.withLock { $0.accessLifetime = 3 }
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let daemon = daemon(base, mappings: mappings)
            try daemon.start(arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            #expect(try await daemon.post(try Self.hire(1)).status == 200)
            #expect(try await daemon.waitFor { _ in try allDone(daemon, count: 1) }, "\(daemon.log(tail: 3000))")
            let created = try #require(server.state.withLock { $0.persons.first { $0.email == "bruce1@wayneenterprises.com" } })
            #expect(created.startDate == "2025-01-01")
            #expect(created.supervisor == "3003", "the supervisor found by name is set on the employment")
            #expect(created.attributes["dynamic_306"] == "SE6281323143611896423859")
            let capture: String = try jobs(daemon)[0]["capture"] ?? ""
            #expect(capture.contains("\"person_id\":\"\(created.id)\""), "\(capture)")

            // A hand re-send (a new body for the same hire) creates nothing.
            #expect(try await daemon.post(ConnectorHires.resend(try Self.hire(1))).status == 200)
            #expect(
                try await daemon.waitFor { _ in try jobs(daemon).count == 2 && jobs(daemon)[1]["state"] == "skipped" }, "\(daemon.log(tail: 3000))")

            // After the first token's life: the next hire gets a new token and lands.
            try await Task.sleep(for: .seconds(4))
            #expect(try await daemon.post(try Self.hire(2)).status == 200)
            #expect(try await daemon.waitFor { _ in try jobs(daemon).count == 3 && jobs(daemon)[2]["state"] == "done" }, "\(daemon.log(tail: 3000))")
            let state = server.state.withLock { $0 }
            #expect(state.creates == 2 && state.duplicates == 0, "each hire created once")
            #expect(state.tokensIssued >= 2, "the expired token was renewed")

            let log = daemon.log(tail: 2_000_000)
            #expect(!log.contains(Self.secret))
            for token in state.access.keys { #expect(!log.contains(token)) }
            #expect(!log.contains("SE6281323143611896423859") && !log.contains("bruce1@wayneenterprises.com"), "personal data in the log")
            let shown = try daemon.cli(["jobs", "show", "1"]).output
            #expect(!shown.contains("SE6281323143611896423859") && !shown.contains("bruce1@wayneenterprises.com"), "\(shown)")
        }
    }

    @Test func aPersonPersonioAlreadyHasIsNotCreatedAgainAfterTheStoreIsLost() async throws {
        let server = PersonioContractServer()
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let first = daemon(base, mappings: mappings)
            try first.start()
            #expect(try await first.post(try Self.hire(7)).status == 200)
            #expect(try await first.waitFor { _ in try allDone(first, count: 1) }, "\(first.log(tail: 3000))")
            first.stop()
            // A new data directory (a lost store, a second installation): the ledger knows nothing, the lookup by e-mail does.
            let second = daemon(base, mappings: mappings)
            try second.start()
            defer { second.stop() }
            #expect(try await second.post(try Self.hire(7)).status == 200)
            #expect(try await second.waitFor { _ in try allDone(second, count: 1) }, "\(second.log(tail: 3000))")
            #expect(server.state.withLock { $0.creates } == 1)
            let capture: String = try jobs(second)[0]["capture"] ?? ""
            #expect(capture.contains("\"outcome\":\"finished\""), "\(capture)")
        }
    }

    @Test func throttlingIsWaitedOutAndAWrongSecretFailsWithoutShowingIt() async throws {
        let server = PersonioContractServer()
        server.state.withLock { $0.perSecond = 3 }
        try await server.run { base in
            let mappings = try FortnoxConnectorEndToEndTests.mappingsDirectory()
            let daemon = daemon(base, mappings: mappings)
            try daemon.start()
            for n in 1...5 { #expect(try await daemon.post(try Self.hire(n)).status == 200) }
            #expect(try await daemon.waitFor(timeout: 90) { _ in try allDone(daemon, count: 5) }, "\(daemon.log(tail: 3000))")
            let state = server.state.withLock { $0 }
            #expect(state.throttled > 0, "the server did throttle")
            #expect(state.creates == 5 && state.duplicates == 0 && state.supervisorsSet == 5)
            daemon.stop()

            let wrong = self.daemon(base, mappings: mappings, secret: "wrong-secret-0123456789")
            try wrong.start()
            defer { wrong.stop() }
            #expect(try await wrong.post(try Self.hire(9)).status == 200)
            #expect(try await wrong.waitFor { _ in try jobs(wrong).first.map { $0["state"] != "pending" } ?? false }, "\(wrong.log(tail: 3000))")
            let shown = try wrong.cli(["jobs", "list"]).output
            #expect(shown.contains("unauthorized_client") && !shown.contains("wrong-secret"), "\(shown)")
            #expect(server.state.withLock { $0.creates } == 5)
        }
    }
}
