import Clocks

/// What one downstream (a host, or a host per company) takes right now: its
/// rate limit, its concurrency limit, a pause a 429 asked for, and a circuit
/// breaker. Pure state: the REST sender keeps one per downstream, asks
/// `admit` before each request and reports each answer with `finished`.
///
/// The breaker opens after `breakerAfter` retryable failures in a row
/// (network errors, 408/425/5XX, a 429); while open, nothing is sent. When
/// its time is up exactly one real job attempt goes through (half-open); its
/// success closes the breaker, its failure opens it again. Requests that are
/// not admitted are postponed, never counted as attempts.
public struct DownstreamGate: Sendable, Hashable {
    /// The limits a mapping sets for its downstream.
    public struct Rules: Sendable, Hashable {
        /// At most `count` requests in any window of `window` (e.g. 10 a minute, 25 per 5 s).
        public struct Rate: Sendable, Hashable {
            /// Requests allowed in one window.
            public var count: Int
            /// The sliding window.
            public var window: Duration
        }

        /// See `Rate`; `nil`: no rate limit.
        public var rate: Rate?
        /// At most this many requests in flight.
        public var concurrency: Int?
        /// Consecutive retryable failures that open the breaker.
        public var breakerAfter: Int
        /// How long it stays open before a probe.
        public var breakerOpen: Duration
        /// How long a 429 without `Retry-After` pauses the downstream.
        public var throttlePause: Duration

        /// Defaults: no rate or concurrency limit; the breaker opens after 5
        /// failures for 30 s; a 429 without `Retry-After` pauses a minute.
        public init(
            rate: (count: Int, window: Duration)? = nil, concurrency: Int? = nil, breakerAfter: Int = 5, breakerOpen: Duration = .seconds(30),
            throttlePause: Duration = .seconds(60)
        ) {
            self.rate = rate.map { Rate(count: $0.count, window: $0.window) }
            self.concurrency = concurrency
            self.breakerAfter = breakerAfter
            self.breakerOpen = breakerOpen
            self.throttlePause = throttlePause
        }
    }

    /// Whether a request may go now.
    public enum Admission: Sendable, Hashable {
        /// Send it (and report it with `finished`).
        case go
        /// Not before `until`: `reason` says which limit holds it.
        case wait(until: Timestamp, reason: String)
    }

    /// How a request that was let through ended.
    public enum Result: Sendable, Hashable {
        /// Any answer that is not a retryable failure (a success, a 400 too:
        /// the downstream is up).
        case answered
        /// A retryable failure: network, 408, 425, 5XX.
        case failed
        /// A 429: the whole downstream waits `retryAfter` (or the rules' `throttlePause`).
        case throttled(retryAfter: Duration?)
    }

    /// The breaker's state, for metrics and `jobs` output.
    public enum BreakerState: String, Sendable, Hashable {
        case closed, open
        case halfOpen = "half_open"
    }

    var sent: [Timestamp] = []
    var inFlight = 0
    var pausedUntil: Timestamp?
    var consecutiveFailures = 0
    var openUntil: Timestamp?
    var probing = false

    /// A gate with nothing sent yet.
    public init() {}

    /// The breaker as of `now`.
    public func breaker(at now: Timestamp) -> BreakerState {
        guard let openUntil else { return .closed }
        return now < openUntil && !probing ? .open : .halfOpen
    }

    /// Admits one request or says until when it must wait. An admitted
    /// request is counted against the limits at once.
    public mutating func admit(now: Timestamp, rules: Rules) -> Admission {
        if let pausedUntil, now < pausedUntil { return .wait(until: pausedUntil, reason: "the downstream asked to wait (429)") }
        if let openUntil {
            if now < openUntil { return .wait(until: openUntil, reason: "circuit breaker open after \(consecutiveFailures) failures in a row") }
            if probing { return .wait(until: now.adding(.seconds(1)), reason: "circuit breaker half-open: one attempt is probing") }
        }
        if let limit = rules.concurrency, inFlight >= limit {
            return .wait(until: now.adding(.milliseconds(200)), reason: "\(limit) requests in flight to this downstream")
        }
        if let rate = rules.rate {
            sent.removeAll { $0.adding(rate.window) <= now }
            if sent.count >= rate.count, let oldest = sent.first {
                return .wait(until: oldest.adding(rate.window), reason: "rate limit \(rate.count) per \(rate.window)")
            }
            sent.append(now)
        }
        if openUntil != nil { probing = true }
        inFlight += 1
        return .go
    }

    /// Reports how an admitted request ended.
    public mutating func finished(_ result: Result, now: Timestamp, rules: Rules) {
        inFlight = max(inFlight - 1, 0)
        let wasProbe = probing
        probing = false
        switch result {
        case .answered:
            consecutiveFailures = 0
            openUntil = nil
        case .failed, .throttled:
            consecutiveFailures += 1
            if case .throttled(let retryAfter) = result {
                let until = now.adding(retryAfter ?? rules.throttlePause)
                pausedUntil = max(pausedUntil ?? until, until)
            }
            if wasProbe || consecutiveFailures >= rules.breakerAfter { openUntil = now.adding(rules.breakerOpen) }
        }
    }
}
