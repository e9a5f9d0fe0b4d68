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
