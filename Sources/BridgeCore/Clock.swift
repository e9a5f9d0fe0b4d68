import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds since the Unix epoch: what the store
/// persists for due times, leases and retention.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public init(seconds: Int64) {
        self.milliseconds = seconds * 1000
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public func adding(milliseconds delta: Int64) -> Timestamp {
        Timestamp(milliseconds: milliseconds + delta)
    }

    public func adding(_ duration: Duration) -> Timestamp {
        adding(milliseconds: duration.milliseconds)
    }

    public var description: String { "\(milliseconds)ms" }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Time as a dependency: every retry, lease, schedule and expiry asks this
/// clock, so tests move time instead of sleeping.
public protocol WallClock: Sendable {
    func now() -> Timestamp
    /// Returns at `deadline` or later; throws `CancellationError` when cancelled.
    func sleep(until deadline: Timestamp) async throws
}

extension WallClock {
    /// Returns once `duration` has passed on this clock.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now().adding(duration))
    }
}

/// The real clock: `CLOCK_REALTIME` for timestamps, `Task.sleep` for waiting.
public struct SystemWallClock: WallClock {
    public init() {}

    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public func sleep(until deadline: Timestamp) async throws {
        let delta = deadline.milliseconds - now().milliseconds
        if delta > 0 { try await Task.sleep(for: .milliseconds(delta)) }
    }
}

/// A clock that only moves when told to. Sleepers wake when `advance` passes
/// their deadline, in deadline order; nothing here fakes what it measures.
public final class ManualWallClock: WallClock {
    struct Sleeper {
        var id: Int
        var deadline: Timestamp
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var now: Timestamp
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    public init(now: Timestamp = Timestamp(seconds: 1_767_225_600)) {
        state = Mutex(State(now: now))
    }

    public func now() -> Timestamp {
        state.withLock { $0.now }
    }

    /// How many tasks are waiting in `sleep(until:)`.
    public var sleeperCount: Int {
        state.withLock { $0.sleepers.count }
    }

    public func sleep(until deadline: Timestamp) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.now >= deadline || Task.isCancelled { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        advance(to: now().adding(duration))
    }

    public func advance(to target: Timestamp) {
        let due = state.withLock { state -> [Sleeper] in
            if target > state.now { state.now = target }
            let due = state.sleepers.filter { $0.deadline <= state.now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
