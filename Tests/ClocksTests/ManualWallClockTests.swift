import JSON
import Synchronization
import Testing

@testable import Clocks
@testable import TestSupport

@Suite("Manual wall clock")
struct ManualWallClockTests {
    @Test func sleepersWakeInDeadlineOrderWhenTimeAdvances() async throws {
        let clock = ManualWallClock(now: Timestamp(seconds: 100))
        let order = OrderLog()
        await withTaskGroup(of: Void.self) { group in
            for (name, at) in [("late", 130), ("early", 110)] {
                group.addTask {
                    try? await clock.sleep(until: Timestamp(seconds: Int64(at)))
                    order.append(name)
                }
            }
            while clock.sleeperCount < 2 { await Task.yield() }
            clock.advance(by: .seconds(15))
            while order.entries.count < 1 { await Task.yield() }
            #expect(order.entries == ["early"])
            clock.advance(by: .seconds(15))
        }
        #expect(order.entries == ["early", "late"])
        #expect(clock.now() == Timestamp(seconds: 130))
    }

    @Test func cancelledSleepThrows() async {
        let clock = ManualWallClock()
        let task = Task { try await clock.sleep(until: clock.now().adding(.seconds(60))) }
        while clock.sleeperCount < 1 { await Task.yield() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLockLike()
    private var items: [String] = []
    func append(_ s: String) { lock.locked { items.append(s) } }
    var entries: [String] { lock.locked { items } }
}

final class NSLockLike: Sendable {
    private let mutex = Mutex(())
    func locked<T>(_ body: () -> T) -> T { mutex.withLock { _ in body() } }
}
