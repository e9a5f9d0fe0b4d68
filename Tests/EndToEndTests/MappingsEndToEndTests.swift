import Foundation
import GRDB
import JSON
import Testing

@Suite("Mapping files in the daemon", .serialized)
struct MappingsEndToEndTests {
    static let bundledMappings: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("mappings").path
    }()

    @Test func aHiredCandidateIsRoutedThroughTheBundledMappings() async throws {
        let daemon = Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0",
            "JOBYLON_BRIDGE_MAPPINGS": Self.bundledMappings,
            "PAYROLL_URL": "http://127.0.0.1:9/payroll",
            "PAYROLL_TOKEN": "payroll-secret",
        ])
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
        try await daemon.routed()
        let rows = try daemon.query { db in
            try Row.fetchAll(db, sql: "SELECT mapping, item, kind, state, last_error, payload FROM jobs ORDER BY mapping, item")
        }
        #expect(
            rows.map { "\($0["mapping"] as String)/\($0["item"] as String)" } == [
                "cv-archive/answer-1", "cv-archive/cv", "hired-nightly-csv/", "jobylon-result-card/", "payroll-new-hire/",
            ])
        let card = try #require(rows.first { $0["mapping"] as String == "jobylon-result-card" })
        #expect(card["state"] as String == "held")
        #expect((card["last_error"] as String? ?? "").contains("JOBYLON_API_URL"))
        // Secrets are injected at send time, never stored.
        for row in rows {
            let payload = String(decoding: (row["payload"] as Data), as: UTF8.self)
            #expect(!payload.contains("payroll-secret"))
        }
        let payroll = try #require(rows.first { $0["mapping"] as String == "payroll-new-hire" })
        #expect(String(decoding: (payroll["payload"] as Data), as: UTF8.self).contains("Bearer ${PAYROLL_TOKEN}"))
        // A job that is not hired matches nothing.
        let notHired = String(decoding: try Fixtures.candidate(id: "eeeeeeee-0000-4000-8000-000000000001"), as: UTF8.self)
            .replacingOccurrences(of: "\"group\": 20", with: "\"group\": 1")
        #expect(try await daemon.post(Array(notHired.utf8)).status == 200)
        try await daemon.routed()
        let count = try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs") }
        #expect(count == 5)
    }

    @Test func aReloadThatProvidesTheSecretReleasesHeldJobs() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-reload-\(UUID().uuidString)").path
        let mappings = root + "/mappings"
        let secrets = root + "/secrets"
        try FileManager.default.createDirectory(atPath: mappings, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.bundledMappings + "/payroll-new-hire.json", toPath: mappings + "/payroll-new-hire.json")
        let daemon = Daemon(environment: [
            "JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": mappings, "JOBYLON_BRIDGE_SECRETS_DIR": secrets,
        ])
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
        try await daemon.routed()
        let held = try daemon.query { db in try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE state = 'held'") }
        #expect(held == "missing variables PAYROLL_URL, PAYROLL_TOKEN")
        try "http://127.0.0.1:9".write(toFile: secrets + "/PAYROLL_URL", atomically: true, encoding: .utf8)
        try "s3cret".write(toFile: secrets + "/PAYROLL_TOKEN", atomically: true, encoding: .utf8)
        kill(try #require(daemon.process?.processIdentifier), SIGHUP)
        // Released to the queue and sent (port 9 refuses: a network error, retried later).
        #expect(
            try await daemon.waitFor { db in
                try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE attempts >= 1")?.hasPrefix("network: ") == true
            })
        #expect(!daemon.log(tail: 20_000).contains("s3cret"))
    }

    @Test func renderedJobsKnowTheirEventID() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-eventid-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
        {"name": "ids", "when": {"event": ["job/new", "job/update"]},
         "rest": {"url": "https://payroll.example/x", "body": {"event": "{{ event.id }}", "action": "{{ event.action }}"}}}
        """.write(toFile: directory + "/ids.json", atomically: true, encoding: .utf8)
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "0", "JOBYLON_BRIDGE_MAPPINGS": directory])
        try daemon.start()
        #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
        _ = try await daemon.post(try Fixtures.bytes("job-new"))  // a duplicate reserves an id it never uses
        daemon.stop()
        try daemon.start()  // ids continue past the stored ones after a restart
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("job-update")).status == 200)
        try await daemon.routed()
        let rows = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT event_id, payload FROM jobs ORDER BY id") }
        #expect(rows.count == 2)
        for row in rows {
            let payload = try JSONParser.parse([UInt8](row["payload"] as Data))
            #expect(payload["body"]?["event"]?.numberValue?.int64Value == row["event_id"] as Int64)
        }
        let ids = try daemon.query { db in try Int64.fetchAll(db, sql: "SELECT id FROM inbox ORDER BY id") }
        #expect(ids.count == 2 && ids[0] < ids[1])
    }

    @Test func mapExitsNonZeroWhenAResultIsAnError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-map-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "body": {"t": "{{ job.title | required }}"}}}"#
            .write(toFile: directory + "/m.json", atomically: true, encoding: .utf8)
        let good = #"{"event_type": "job", "action": "new", "data": {"job": {"id": 1, "title": "Engineer"}}}"#
        let bad = #"{"event_type": "job", "action": "new", "data": {"job": {"id": 2}}}"#
        try good.write(toFile: directory + "/good.json", atomically: true, encoding: .utf8)
        try bad.write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        try (good + "\n" + bad + "\n").write(toFile: directory + "/events.ndjson", atomically: true, encoding: .utf8)
        let environment = ProcessInfo.processInfo.environment
        #expect(
            try Daemon.command(["map", "--mapping", directory + "/m.json", "--event", directory + "/good.json"], environment: environment).status == 0
        )
        let failed = try Daemon.command(["map", "--mapping", directory + "/m.json", "--event", directory + "/bad.json"], environment: environment)
        #expect(failed.status == 1)
        #expect(failed.output.contains(#""result": "error""#))
        let lines = try Daemon.command(
            ["map", "--mapping", directory + "/m.json", "--ndjson", directory + "/events.ndjson"], environment: environment)
        #expect(lines.status == 1)
        #expect(lines.output.contains("1 of 2 event(s) gave a result of \"error\""))
        #expect(lines.output.contains(#""result":"planned""#), "every line is printed before the exit")
    }

    @Test func aBrokenMappingStopsTheDaemonNamingFileAndPosition() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-bad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
        {
          "name": "broken",
          "when": { "event": "candidate/new" },
          "rest": { "url": "https://payroll.example/x", "body": { "a": "{{ candidate.id | nope }}" } }
        }
        """.write(toFile: directory + "/broken.json", atomically: true, encoding: .utf8)
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_MAPPINGS": directory])
        #expect(throws: HarnessError.self) { try daemon.start() }
        let log = daemon.log(tail: 4000)
        #expect(log.contains("broken.json:4:83: error: unknown filter 'nope'"), "\(log)")
        #expect(log.contains("(at /rest/body/a)"))
    }
}
