import Foundation
import GRDB
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
        let rows = try daemon.query { db in
            try Row.fetchAll(db, sql: "SELECT mapping, item, kind, state, last_error, payload FROM jobs ORDER BY mapping, item")
        }
        #expect(rows.map { "\($0["mapping"] as String)/\($0["item"] as String)" } == [
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
        let count = try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs") }
        #expect(count == 5)
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
