import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds since the Unix epoch: what the store
/// persists for due times, leases and retention.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Unix milliseconds (UTC, no leap seconds); negative before 1970.
    public var milliseconds: Int64

    /// Wraps Unix milliseconds unchanged (the unit the store persists).
    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// Whole Unix seconds (what `CronSchedule` works in), scaled to milliseconds.
    public init(seconds: Int64) {
        self.milliseconds = seconds * 1000
    }

    /// Earlier first: plain millisecond order.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// Shifted by `delta` milliseconds (negative moves back); traps on `Int64`
    /// overflow, like any Swift addition.
    public func adding(milliseconds delta: Int64) -> Timestamp {
        Timestamp(milliseconds: milliseconds + delta)
    }

    /// Shifted by `duration`, cut to whole milliseconds (see `Duration.milliseconds`).
    public func adding(_ duration: Duration) -> Timestamp {
        adding(milliseconds: duration.milliseconds)
    }

    public var description: String { "\(milliseconds)ms" }
}

extension Duration {
    /// Whole milliseconds, truncated towards zero (rounded down only for a
    /// positive duration: -1.5 ms gives -1).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Time as a dependency: every retry, lease, schedule and expiry asks this
/// clock, so tests move time instead of sleeping.
public protocol WallClock: Sendable {
    /// The current time; on a real clock successive calls may go backwards (an NTP step).
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

    /// `CLOCK_REALTIME` truncated to milliseconds: it follows NTP and manual changes,
    /// so it may step backwards.
    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    /// Sleeps the remainder measured once, on `Task.sleep`'s continuous clock, so a
    /// wall-clock step during the sleep is not followed; returns at once, without a
    /// cancellation check, when the deadline has already passed.
    public func sleep(until deadline: Timestamp) async throws {
        let delta = deadline.milliseconds - now().milliseconds
        if delta > 0 { try await Task.sleep(for: .milliseconds(delta)) }
    }
}
