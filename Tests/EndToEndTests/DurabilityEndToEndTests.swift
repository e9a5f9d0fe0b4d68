import CurlClient
import Foundation
import GRDB
import JSON
import Synchronization
import Testing

/// What "a 2XX means durably stored" and "nothing doubled" mean under load,
/// restarts, `kill -9` and a full store.
@Suite("Durability end to end", .serialized)
struct DurabilityEndToEndTests {
    /// Posts `count` unique candidate bodies with `parallel` requests in flight;
    /// returns the inbox ids of the 2XX answers and every status seen.
    static func postMany(_ daemon: Daemon, count: Int, parallel: Int, prefix: String) async throws -> (ids: [Int64], statuses: [Int]) {
        try await withThrowingTaskGroup(of: (Int64?, Int).self) { group in
            var ids: [Int64] = []
            var statuses: [Int] = []
            var next = 0
            func add() throws {
                let id = String(format: "%@-%08d-0000-4000-8000-000000000000", prefix, next)
                let body = try Fixtures.candidate(id: id)
                next += 1
                group.addTask {
                    do {
                        let response = try await daemon.post(body)
                        let stored = response.status == 200 ? (try? JSONParser.parse(response.body))?["id"]?.numberValue?.int64Value : nil
                        return (stored, response.status)
                    } catch {
                        return (nil, -1)
                    }
                }
            }
            for _ in 0..<min(parallel, count) { try add() }
            while let (id, status) = try await group.next() {
                if let id { ids.append(id) }
                statuses.append(status)
                if next < count { try add() }
            }
            return (ids, statuses)
        }
    }

    @Test func twoThousandConcurrentPostsGiveExactlyTwoThousandRows() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let (ids, statuses) = try await Self.postMany(daemon, count: 2000, parallel: 64, prefix: "aaaaaaaa")
        #expect(statuses.filter { $0 == 200 }.count == 2000, "statuses: \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
        #expect(Set(ids).count == 2000)
        let stored = try daemon.query { db in try Set(Int64.fetchAll(db, sql: "SELECT id FROM inbox")) }
        #expect(stored.count == 2000)
        #expect(Set(ids) == stored, "every 2XX must match a row")
        #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 2000 })
    }

    @Test func killNineAfterAcknowledgementLosesNothing() async throws {
        let daemon = Daemon()
        try daemon.start()
        let acknowledged = LockedIDs()
        let bodies = try (0..<400).map { try Fixtures.candidate(id: String(format: "bbbbbbbb-%08d-0000-4000-8000-000000000000", $0)) }
        // Fire requests, and kill -9 the daemon while they are in flight.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for chunk in stride(from: 0, to: bodies.count, by: 50) {
                group.addTask {
                    for body in bodies[chunk..<min(chunk + 50, bodies.count)] {
                        guard let response = try? await daemon.post(body), response.status == 200,
                            let id = (try? JSONParser.parse(response.body))?["id"]?.numberValue?.int64Value
                        else { continue }
                        acknowledged.append(id)
                    }
                }
            }
            group.addTask {
                while acknowledged.count < 100 { try await Task.sleep(for: .milliseconds(2)) }
                daemon.kill9()
            }
            try await group.waitForAll()
        }
        let acked = acknowledged.all
        #expect(acked.count >= 100)
        #expect(acked.count < bodies.count, "the kill should interrupt the run")
        // Every acknowledged webhook survives, body intact.
        let stored = try daemon.query { db in
            try Row.fetchAll(db, sql: "SELECT id, length(body) AS n FROM inbox").reduce(into: [Int64: Int]()) { $0[$1["id"]] = $1["n"] }
        }
        for id in acked { #expect(stored[id] != nil && stored[id]! > 1000, "acknowledged event \(id) lost") }
        // And the daemon comes back on the same store.
        try daemon.start()
        defer { daemon.stop() }
        #expect(try await daemon.post(try Fixtures.bytes("job-new")).status == 200)
        // Events acknowledged but not yet routed when the process died get their jobs now.
        try await daemon.routed()
        let withoutJobs = try daemon.query { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE disposition = 'routed' AND id NOT IN (SELECT event_id FROM jobs)")
        }
        #expect(withoutJobs == 0, "an acknowledged event never got its job")
        #expect(
            try await daemon.waitFor { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done')") == 0
            }, "jobs left unfinished after the restart")
    }

    /// Background checkpoints flush the database file while the daemon runs;
    /// an operator command opening and closing the store beside it must find
    /// the daemon's locks in place (a descriptor closed behind SQLite's back
    /// drops them: the command then took itself for the last user and deleted
    /// the live WAL, and what the daemon acknowledged afterwards was lost).
    @Test func operatorCommandsBesideCheckpointsCostNoAcknowledgedWebhook() async throws {
        let daemon = Daemon()
        try daemon.start()
        let first = try await Self.postMany(daemon, count: 300, parallel: 16, prefix: "cccccccc")
        #expect(first.ids.count == 300)
        // Maintenance checkpoints every second; let two rounds run.
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try daemon.cli(["jobs", "list"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: daemon.dataDir + "/bridge.sqlite-wal"), "the live WAL was deleted")
        let second = try await Self.postMany(daemon, count: 50, parallel: 8, prefix: "dddddddd")
        #expect(second.ids.count == 50)
        daemon.kill9()
        let stored = try daemon.query { db in try Set(Int64.fetchAll(db, sql: "SELECT id FROM inbox")) }
        for id in first.ids + second.ids { #expect(stored.contains(id), "acknowledged event \(id) lost") }
    }

    @Test func restartKeepsEventsAndJobs() async throws {
        let daemon = Daemon()
        try daemon.start()
        #expect(try await daemon.post(try Fixtures.bytes("candidate-new")).status == 200)
        #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1 })
        daemon.stop()
        try daemon.start()
        defer { daemon.stop() }
        let again = try await daemon.post(try Fixtures.bytes("candidate-new"))
        #expect(reply(again)?["status"] == "duplicate")
        let counts = try daemon.query { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox"), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'"))
        }
        #expect(counts.0 == 1)
        #expect(counts.1 == 1)
    }

    @Test func aResentCandidateIsSkippedByTheEffectLedger() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let id = "cccccccc-0000-4000-8000-000000000001"
        #expect(try await daemon.post(try Fixtures.candidate(id: id)).status == 200)
        #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1 })
        // A hand re-send: same candidate, different body (fresh signed URLs, edits).
        #expect(try await daemon.post(try Fixtures.candidate(id: id, extra: " (re-sent)")).status == 200)
        #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'skipped'") == 1 })
        let rows = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT id, state, skipped_for FROM jobs ORDER BY id") }
        #expect(rows.map { $0["state"] as String } == ["done", "skipped"])
        #expect(rows[1]["skipped_for"] as Int64? == rows[0]["id"] as Int64)
        let effects = try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM effects") }
        #expect(effects == 1)
    }

    @Test func aFullStoreAnswers503AndNeverAcknowledgesWhatItDidNotStore() async throws {
        // max_page_count makes SQLite report a real SQLITE_FULL once the file hits the cap.
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_SQLITE_MAX_PAGES": "60"])
        try daemon.start()
        defer { daemon.stop() }
        var sawUnavailable = false
        var acknowledged: [Int64] = []
        for n in 0..<200 {
            let response = try await daemon.post(try Fixtures.candidate(id: String(format: "dddddddd-%08d-0000-4000-8000-000000000000", n)))
            if response.status == 503 {
                sawUnavailable = true
                #expect(response.header("Retry-After") == "10")
                break
            }
            #expect(response.status == 200)
            if let id = reply(response)?["id"]?.numberValue?.int64Value { acknowledged.append(id) }
        }
        #expect(sawUnavailable)
        let stored = try daemon.query { db in try Set(Int64.fetchAll(db, sql: "SELECT id FROM inbox")) }
        #expect(Set(acknowledged).isSubset(of: stored))
        let ready = try await daemon.get("/readyz")
        #expect(ready.status == 503, "\(ready.text)")
    }

    @Test func oneDaemonPerStore() async throws {
        let daemon = Daemon()
        try daemon.start()
        defer { daemon.stop() }
        let second = Daemon(dataDir: daemon.dataDir)
        #expect(throws: HarnessError.self) { try second.start() }
        #expect(second.log(tail: 1000).contains("another jobylon-bridge daemon already serves"))
    }

    @Test func noTokenOnAPublicAddressRefusesToStart() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "JOBYLON_BRIDGE_TOKEN")
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_TOKEN": ""])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Daemon.binary)
        process.arguments = ["serve", "--listen", "0.0.0.0:0", "--data-dir", daemon.dataDir]
        environment["JOBYLON_BRIDGE_TOKEN"] = nil
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("no webhook token configured"))
    }

    @Test func noTokenOnLoopbackGeneratesOnePrivately() async throws {
        let daemon = Daemon(environment: ["JOBYLON_BRIDGE_TOKEN": ""])
        try daemon.start()
        defer { daemon.stop() }
        let path = daemon.dataDir + "/webhook-token"
        let token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await daemon.post(try Fixtures.bytes("job-new"), token: token).status == 200)
        #expect(!daemon.log(tail: 10_000).contains(token), "the token must not be logged")
    }
}

/// The daemon's JSON reply, or nil.
func reply(_ response: CurlResponse) -> JSONValue? {
    try? JSONParser.parse(response.body, options: .payload)
}

final class LockedIDs: Sendable {
    private let ids = Mutex<[Int64]>([])
    func append(_ id: Int64) { ids.withLock { $0.append(id) } }
    var count: Int { ids.withLock { $0.count } }
    var all: [Int64] { ids.withLock { $0 } }
}
