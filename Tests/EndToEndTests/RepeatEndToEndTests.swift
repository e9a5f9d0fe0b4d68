import Foundation
import GRDB
import JSON
import Testing

@Suite("Repeats and secrets end to end", .serialized)
struct RepeatEndToEndTests {
    /// Regression: when the mapping named in `on_repeat` also matched the event,
    /// the claim failed on UNIQUE(event_id, mapping, item) over and over and no
    /// other job was claimed. Now a first send makes one create and no update,
    /// a hand re-send exactly one update, each with its own idempotency key.
    @Test func onRepeatNamingAMatchingMappingSendsOneUpdatePerResend() async throws {
        let payroll = PayrollServer(script: [201])
        try await payroll.run { base in
            let directory = try mappingDirectory([
                "create": """
                {"name": "create", "when": {"event": "job/new"}, "effect_key": "{{ company.id }}:{{ job.id }}", "on_repeat": "update",
                 "rest": {"url": "\(base)/employees", "body": {"job": "{{ job.id }}"}, "honours_idempotency_key": true}}
                """,
                "update": """
                {"name": "update", "when": {"event": "job/new"}, "effect_key": "{{ company.id }}:{{ job.id }}",
                 "rest": {"url": "\(base)/employees/update", "body": {"job": "{{ job.id }}"}, "honours_idempotency_key": true}}
                """,
            ])
            let daemon = Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory])
            try daemon.start()
            defer { daemon.stop() }
            let body = try Fixtures.bytes("job-new")
            #expect(try await daemon.post(body).status == 200)
            #expect(
                try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1 },
                "\(daemon.log(tail: 4000))")
            #expect(payroll.requests.map(\.path) == ["/employees"])
            // A hand re-send: the same event as a new body.
            #expect(try await daemon.post(body + Array("\n".utf8)).status == 200)
            #expect(
                try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 2 },
                "\(daemon.log(tail: 4000))")
            #expect(payroll.requests.map(\.path) == ["/employees", "/employees/update"])
            let keys = payroll.requests.compactMap { $0.headers["idempotency-key"] }
            #expect(keys.count == 2)
            #expect(Set(keys).count == 2, "the update must not reuse the create's key")
            // A second re-send is a second update, again with a key of its own.
            #expect(try await daemon.post(body + Array("\n\n".utf8)).status == 200)
            #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 3 })
            #expect(payroll.requests.map(\.path) == ["/employees", "/employees/update", "/employees/update"])
            #expect(Set(payroll.requests.compactMap { $0.headers["idempotency-key"] }).count == 3)
            #expect(!daemon.log(tail: 20_000).contains("claiming jobs failed"))
        }
    }

    /// Regression: `--log-level debug`/`trace` printed the whole environment
    /// (tokens and passwords) when the service group started and stopped.
    @Test func noSecretAtTraceLevel() async throws {
        let secret = "pw-\(UInt32.random(in: 0...UInt32.max))-secret"
        let daemon = Daemon(environment: ["PAYROLL_PASSWORD": secret, "SOME_API_TOKEN": secret + "-token"])
        try daemon.start(arguments: ["--log-level", "trace"])
        #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
        try await daemon.routed()
        daemon.stop()
        let log = daemon.log(tail: 1_000_000)
        #expect(log.contains("trace") || log.contains("debug"), "the daemon did not log at trace level")
        #expect(!log.contains(secret))
        #expect(!log.contains(Daemon.token))
    }

    /// Regression: a job that died when it was created was not logged at all,
    /// and every REST failure was logged as "payroll request failed" whatever
    /// the mapping. Both now name the mapping and the (redacted) reason.
    @Test func failuresAreLoggedWithTheirMappingAndARedactedReason() async throws {
        let erp = PayrollServer(script: [422])
        try await erp.run { base in
            let directory = try mappingDirectory([
                "broken": """
                {"name": "broken", "when": {"event": "job/new"}, "rest": {"url": "\(base)/x", "body": {"a": "{{ job.nope | required }}"}}}
                """,
                "erp-create": """
                {"name": "erp-create", "when": {"event": "job/new"}, "rest": {"url": "\(base)/employees", "body": {"job": "{{ job.id }}"}}}
                """,
            ])
            let daemon = Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory])
            try daemon.start()
            defer { daemon.stop() }
            #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
            #expect(
                try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'dead'") == 2 },
                "\(daemon.log(tail: 4000))")
            let log = daemon.log(tail: 50_000)
            #expect(log.contains("job dead at creation"))
            #expect(log.contains("mapping=broken"))
            #expect(log.contains("job failed for good (dead)"))
            #expect(log.contains("mapping=erp-create"))
            #expect(log.contains("HTTP 422"))
            // The ERP's answer quotes an IBAN and an e-mail address: neither is logged or stored.
            #expect(!log.contains("SE6281323143611896423859"))
            #expect(!log.contains("bruce@wayneenterprises.com"))
            let stored = try daemon.query { db in try String.fetchAll(db, sql: "SELECT COALESCE(last_error, '') FROM jobs") }.joined()
            #expect(!stored.contains("SE6281323143611896423859") && !stored.contains("bruce@"))
        }
    }
}
