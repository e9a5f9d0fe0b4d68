import Clocks

/// Whether webhooks are arriving faster than one commit at a time takes them.
///
/// Acknowledging a webhook is the one thing that cannot wait: Jobylon retries
/// only three times. Routing and jobs can, so while webhooks queue up for
/// commits they step aside (`BackgroundYield`) and catch up afterwards.
public protocol IngestPressure: Sendable {
    /// True while webhooks queue up for commits (a burst, a replay storm).
    var isHigh: Bool { get }
}

/// How background work (routing, job claims) gives way under ingest pressure
/// without ever stopping: it pauses in short steps while pressure lasts, but
/// after `maxDeferral` in a row it does one round regardless.
public struct BackgroundYield: Sendable, Hashable {
    /// One step of waiting; pressure is checked again after each.
    public var pause: Duration
    /// The longest a round is put off in a row: past it, the round runs under pressure too.
    public var maxDeferral: Duration

    /// Defaults: 20 ms steps, at most half a second deferred.
    public init(pause: Duration = .milliseconds(20), maxDeferral: Duration = .milliseconds(500)) {
        self.pause = pause
        self.maxDeferral = maxDeferral
    }

    /// The next pause before a round, or nil to go ahead now.
    public func pause(underPressure high: Bool, deferredSoFar: Duration) -> Duration? {
        guard high, deferredSoFar < maxDeferral else { return nil }
        return min(pause, maxDeferral - deferredSoFar)
    }

    /// Waits on `clock` while `pressure` is high, within the limits above.
    public func wait(for pressure: (any IngestPressure)?, on clock: any WallClock) async {
        await wait(for: pressure) { step in try? await clock.sleep(for: step) }
    }

    /// Waits while `pressure` is high, within the limits above.
    public func wait(for pressure: (any IngestPressure)?, sleep: (Duration) async -> Void) async {
        guard let pressure else { return }
        var deferred: Duration = .zero
        while let step = self.pause(underPressure: pressure.isHigh, deferredSoFar: deferred) {
            await sleep(step)
            deferred += step
        }
    }
}
