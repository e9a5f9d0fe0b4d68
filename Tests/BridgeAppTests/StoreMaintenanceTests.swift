import Domain
import Logging
import MetricsTestKit
import StoreSQLite
import TestSupport
import Testing

@testable import BridgeApp

@Suite("Store maintenance")
struct StoreMaintenanceTests {
    @Test func gaugesCountTheOpenStatesAndTheOldestPendingJob() async throws {
        let store = try TestStores.makeSQLiteStore()
        defer { store.close() }
        let clock = ManualWallClock()
        _ = await TestStores.ingest(store, candidate: "a", at: clock.now())
        _ = await TestStores.ingest(store, candidate: "b", at: clock.now())
        clock.advance(by: .seconds(30))
        let metrics = TestMetrics()
        let maintenance = StoreMaintenance(
            store: store, clock: clock, retention: RetentionPolicy(inboxBodyDays: 30, quarantineDays: 30), walPolicy: WALPolicy(),
            metricsFactory: metrics, logger: Logger(label: "test"))
        await maintenance.tick()
        #expect(try metrics.expectGauge("jobylon_bridge_jobs", [("state", "pending")]).lastValue == 2)
        #expect(try metrics.expectGauge("jobylon_bridge_jobs", [("state", "dead")]).lastValue == 0)
        // Terminal states grow without bound and are not gauged every second.
        #expect(throws: (any Error).self) { try metrics.expectGauge("jobylon_bridge_jobs", [("state", "done")]) }
        let oldest = try #require(try metrics.expectGauge("jobylon_bridge_oldest_pending_job_seconds").lastValue)
        #expect(oldest >= 30)
    }
}
