import Clocks
import Domain
import Foundation
import GRDB
import JSON
import Logging
import Testing

@testable import StoreSQLite

@Suite("Replay on a real store")
struct ReplayTests {
    /// Regression: replay inserted new jobs with its own copy of the INSERT,
    /// which left out the `on_repeat` alternative's columns, so the job fell
    /// back to `skip` when its effect was already delivered.
    @Test func aJobCreatedByReplayKeepsItsRepeatAlternative() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-replay-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try SQLiteStore(directory: directory, logger: Logger(label: "test"))
        defer { store.close() }
        let t0 = Timestamp(seconds: 1_800_000_000)
        let id = try await StoreContractTests.deliver(store, candidate: "r1", jobs: [], at: t0)
        let body = StoreContractTests.body("r1")
        let planned = StoreContractTests.job(
            "hire", key: "c1:r1", onRepeat: .alternative(mapping: "update", kind: "log", payload: ["patch": true], mappingHash: "uh"))
        let outcomes = try await store.replay(eventID: id, jobs: [planned], envelope: try WebhookEnvelope.read(body), force: false, now: t0)
        #expect(outcomes.map(\.action) == [.created])
        let row = try #require(
            try store.database.read { db in
                try Row.fetchOne(db, sql: "SELECT on_repeat, alt_mapping, alt_kind, alt_mapping_hash FROM jobs WHERE mapping = 'hire'")
            })
        #expect(row["alt_mapping"] as String? == "update")
        #expect(row["alt_kind"] as String? == "log")
        #expect(row["alt_mapping_hash"] as String? == "uh")
    }
}
