import CurlClient
import Foundation
import GRDB
import JSON
import Testing

/// The daemon as Jobylon sees it: a real process on an ephemeral port, a real
/// SQLite file, requests through libcurl.
@Suite("Webhook receiver end to end", .serialized)
struct ReceiverEndToEndTests {
    @Test func documentedExamplesAreStoredByteExact() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        for name in ["candidate-new", "company-signup", "job-new", "job-update"] {
            let body = try Fixtures.bytes(name)
            let response = try await daemon.post(body)
            #expect(response.status == 200, "\(name): \(response.text)")
            let reply = try JSONParser.parse(response.body)
            #expect(reply["status"] == "stored")
            let id = try #require(reply["id"]?.numberValue?.int64Value)
            let row = try #require(
                try daemon.query { db in
                    try Row.fetchOne(
                        db, sql: "SELECT body, event_type, action, company_id, subject_id, lenient, disposition FROM inbox WHERE id = ?",
                        arguments: [id])
                })
            #expect([UInt8](row["body"] as Data) == body, "\(name) not byte-exact")
            #expect(row["company_id"] as String? == "04b9171e-6d74-451f-a8e3-9bc3cf2b2954")
            #expect(row["lenient"] as Int == 0)
            #expect(row["disposition"] as String == "routed")
        }
        let subjects = try daemon.query { db in try String.fetchAll(db, sql: "SELECT subject_id FROM inbox ORDER BY id") }
        #expect(
            subjects == [
                "aed6532d-2438-4e33-b15b-1f1a20ba1c16", "04b9171e-6d74-451f-a8e3-9bc3cf2b2954",
                "edc3d60e-53d3-4f54-8062-44e4139a52e9", "edc3d60e-53d3-4f54-8062-44e4139a52e9",
            ])
        let company = try daemon.query { db in try Row.fetchOne(db, sql: "SELECT name, internal_id FROM companies") }
        #expect(company?["name"] as String? == "Wayne Enterprises")
        #expect(company?["internal_id"] as String? == "23")
    }

    @Test func sameBodyTwiceIsADuplicateAndAddsNothing() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let body = try Fixtures.bytes("job-new")
        let first = try JSONParser.parse(try await daemon.post(body).body)
        let second = try await daemon.post(body)
        #expect(second.status == 200)
        let reply = try JSONParser.parse(second.body)
        #expect(reply["status"] == "duplicate")
        #expect(reply["id"] == first["id"])
        try await daemon.routed()
        let counts = try daemon.query { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox") ?? -1, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs") ?? -1)
        }
        #expect(counts.0 == 1)
        #expect(counts.1 == 1)
    }

    @Test func wrongOrMissingTokenIs401AndStoresNothing() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let body = try Fixtures.bytes("candidate-new")
        for token in [nil, "wrong", Daemon.token + "x", String(Daemon.token.dropLast())] as [String?] {
            let response = try await daemon.post(body, token: token)
            #expect(response.status == 401)
            #expect(response.header("WWW-Authenticate") == "Bearer")
        }
        let basic = try await daemon.post(body, token: nil, headers: [("Authorization", "Basic \(Daemon.token)")])
        #expect(basic.status == 401)
        let stored = try daemon.query { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM inbox) + (SELECT COUNT(*) FROM quarantine)")
        }
        #expect(stored == 0)
    }

    @Test func rotatedTokensAreAllAccepted() async throws {
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_TOKEN": "old-token, new-token"])
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("job-new"), token: "old-token").status == 200)
        #expect(try await daemon.post(try Fixtures.bytes("job-update"), token: "new-token").status == 200)
    }

    @Test func authenticatedGarbageIsQuarantinedWithAPrecise400() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let cases: [(body: String, message: String)] = [
            ("{\"event_type\": \"candidate\", \"action\": \"new\", \"data\": {\"iban\": \"SE62 8000\" \"x\": 1}}", "1:75: unexpected"),
            ("{\"action\": \"new\", \"data\": {}}", "missing field \\\"event_type\\\""),
            ("[1, 2]", "missing field \\\"event_type\\\""),
            ("{\"event_type\": \"job\", \"action\": \"new\", \"data\": []}", "field \\\"data\\\" must be an object"),
        ]
        for (body, message) in cases {
            let response = try await daemon.post(Array(body.utf8))
            #expect(response.status == 400, "\(body)")
            #expect(response.text.contains(message), "\(response.text)")
            #expect(!response.text.contains("SE62"), "personal data echoed back")
        }
        // The same garbage again is deduplicated in quarantine.
        #expect(try await daemon.post(Array(cases[0].body.utf8)).status == 400)
        let rows = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT body, reason FROM quarantine ORDER BY id") }
        #expect(rows.count == cases.count)
        #expect([UInt8](rows[0]["body"] as Data) == Array(cases[0].body.utf8))
        #expect((rows[0]["reason"] as String).contains("1:75"))
    }

    @Test func oversizedBodiesAre413() async throws {
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_MAX_BODY_BYTES": "4096"])
        try daemon.start()
        defer { daemon.stop() }
        let big = Array(String(repeating: " ", count: 5000).utf8) + (try Fixtures.bytes("job-new"))
        let response = try await daemon.post(big)
        #expect(response.status == 413)
        // A gzip bomb: small on the wire, too large inflated.
        let bomb = try gzip(Array(repeating: UInt8(ascii: " "), count: 200_000) + Array("{}".utf8))
        #expect(bomb.count < 4096)
        let inflated = try await daemon.post(bomb, headers: [("Content-Encoding", "gzip")])
        #expect(inflated.status == 413)
        let stored = try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox") }
        #expect(stored == 0)
    }

    @Test func oversizedHeadersAreRefusedAndStoreNothing() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let huge = String(repeating: "x", count: 20_000)
        do {
            let response = try await daemon.post(try Fixtures.bytes("job-new"), headers: [("X-Padding", huge)])
            #expect((400..<500).contains(response.status), "status \(response.status)")
        } catch {
            // The server may also close the connection: either way nothing is accepted.
        }
        let stored = try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox") }
        #expect(stored == 0)
        // The daemon still serves normal requests.
        #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
    }

    @Test func gzipBodiesAreInflatedAndStoredDecoded() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let body = try Fixtures.bytes("candidate-new")
        let response = try await daemon.post(try gzip(body), headers: [("Content-Encoding", "gzip")])
        #expect(response.status == 200, "\(response.text)")
        let stored = try daemon.query { db in try Data.fetchOne(db, sql: "SELECT body FROM inbox") }
        #expect(stored.map { [UInt8]($0) } == body)
        let corrupt = try await daemon.post(Array("not gzip".utf8), headers: [("Content-Encoding", "gzip")])
        #expect(corrupt.status == 400)
        let brotli = try await daemon.post(body, headers: [("Content-Encoding", "br")])
        #expect(brotli.status == 415)
    }

    @Test func unknownEventsAreStoredUnroutedAndTrailingCommasFlagged() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let unknown = #"{"event_type":"application","action":"status_changed","data":{"company":{"id":"c1"}}}"#
        #expect(try await daemon.post(Array(unknown.utf8)).status == 200)
        let synonym = String(decoding: try Fixtures.bytes("job-new"), as: UTF8.self).replacingOccurrences(of: "\"new\"", with: "\"create\"")
        #expect(try await daemon.post(Array(synonym.utf8)).status == 200)
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new-doc-trailing-commas")).status == 200)
        try await daemon.routed()
        let rows = try daemon.query { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT event_type, action, disposition, lenient, (SELECT COUNT(*) FROM jobs WHERE event_id = inbox.id) AS jobs FROM inbox ORDER BY id"
            )
        }
        #expect(rows.map { $0["disposition"] as String } == ["unrouted", "routed", "routed"])
        #expect(rows.map { $0["jobs"] as Int } == [0, 1, 1])
        #expect(rows.map { $0["lenient"] as Int } == [0, 0, 1])
        #expect(rows[1]["action"] as String == "create")
    }

    @Test func eventsOfCompaniesOutsideTheAllowListAreParked() async throws {
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_ALLOWED_COMPANIES": "some-other-company"])
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
        try await daemon.routed()
        let row = try daemon.query { db in
            try Row.fetchOne(db, sql: "SELECT disposition, (SELECT COUNT(*) FROM jobs) AS jobs FROM inbox")
        }
        #expect(row?["disposition"] as String? == "parked")
        #expect(row?["jobs"] as Int? == 0)
    }

    @Test func healthReadinessAndMetrics() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.get("/healthz").status == 200)
        let ready = try await daemon.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.text.contains("\"store\":\"ok\""))
        _ = try await daemon.post(try Fixtures.bytes("job-new"))
        _ = try await daemon.post(try Fixtures.bytes("job-new"), token: "bad")
        let metrics = try await daemon.get("/metrics").text
        #expect(metrics.contains(#"jobylon_bridge_webhooks_total{event="job/new",outcome="stored"} 1"#))
        #expect(metrics.contains(#"jobylon_bridge_webhooks_total{event="-",outcome="unauthorized"} 1"#))
        #expect(metrics.contains("jobylon_bridge_ingest_seconds_count"))
    }

    @Test func dataDirectoryAndFilesAreNotWorldReadable() async throws {
        let daemon = Daemon()
        try daemon.start()
        _ = try await daemon.post(try Fixtures.bytes("candidate-new"))
        daemon.stop()
        let attributes = try FileManager.default.attributesOfItem(atPath: daemon.dataDir)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        for file in try FileManager.default.contentsOfDirectory(atPath: daemon.dataDir) {
            let mode = try FileManager.default.attributesOfItem(atPath: daemon.dataDir + "/" + file)[.posixPermissions] as? Int
            #expect(mode.map { $0 & 0o077 } == 0, "\(file) is readable by others: \(String(mode ?? 0, radix: 8))")
        }
        let journal = try daemon.query { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }
}

/// gzip through the system's `gzip` tool: an independent encoder.
func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-c"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let writer = Thread {
        input.fileHandleForWriting.write(Data(bytes))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return [UInt8](data)
}
