import Foundation
import Logging
import Testing

@testable import StoreSQLite

@Suite("Store lifetime: the writer thread ends with its store")
struct StoreLifetimeTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jb-lifetime-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The thread holds the writer; the writer is freed only once its thread returned.
    static func waitUntilFreed(_ writer: () -> StoreWriter?) async throws -> Bool {
        for _ in 0..<500 {
            if writer() == nil { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func closeStopsTheWriterThread() async throws {
        var store: SQLiteStore? = try SQLiteStore(directory: try Self.directory(), logger: Logger(label: "test"))
        weak let writer = store?.writer
        store?.close()
        store = nil
        #expect(try await Self.waitUntilFreed { writer })
    }

    /// Regression: a store that was never closed kept its writer thread for
    /// the life of the process (one per test that forgot `close()`).
    @Test func aStoreDroppedWithoutCloseStopsItsWriterThreadToo() async throws {
        var store: SQLiteStore? = try SQLiteStore(directory: try Self.directory(), logger: Logger(label: "test"))
        weak let writer = store?.writer
        #expect(writer != nil)
        store = nil
        #expect(try await Self.waitUntilFreed { writer })
    }
}
