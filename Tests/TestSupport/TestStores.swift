import Clocks
import Domain
import Foundation
import Logging
import Routing
import StoreSQLite

/// A real SQLite store in a fresh temporary directory, and the small steps
/// tests take with it.
public enum TestStores {
    public static func makeSQLiteStore() throws -> SQLiteStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-runner-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try SQLiteStore(directory: directory, logger: Logger(label: "test"))
    }

    public static func ingest(_ store: SQLiteStore, candidate: String, at time: Timestamp) async -> IngestOutcome {
        let body = Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"\#(candidate)"}}}"#.utf8)
        guard let envelope = try? WebhookEnvelope.read(body) else { return .unavailable(reason: "test") }
        return await store.ingest(
            IngestItem(
                body: body, receivedAt: time,
                content: .event(
                    envelope, disposition: .routed, jobs: AuditLogRouter().route(envelope, body: body, receivedAt: Timestamp(seconds: 0)),
                    company: nil)))
    }

    public static func waitUntil(_ condition: () throws -> Bool) async throws -> Bool {
        for _ in 0..<2000 {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

}

public struct AlwaysCrowded: IngestPressure {
    public init() {}

    public var isHigh: Bool { true }
}
