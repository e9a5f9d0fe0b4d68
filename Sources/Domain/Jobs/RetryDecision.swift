import Clocks
import JSON
import Mapping

/// Exponential backoff with full jitter, capped; pure so tests can pin it.
public struct RetryPolicy: Sendable, Hashable {
    /// The cap on the wait after the first attempt; it doubles per attempt.
    public var firstDelay: Duration
    /// No backoff exceeds this (a downstream's `Retry-After` may still ask for longer).
    public var maxDelay: Duration

    /// Defaults: 2 s doubling up to an hour, as `RetryRules.standard` uses.
    public init(firstDelay: Duration = .seconds(2), maxDelay: Duration = .seconds(3600)) {
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
    }

    /// The delay before attempt `attempt + 1`, given a random fraction in [0, 1).
    public func delay(afterAttempt attempt: Int, jitter: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let base = Double(firstDelay.milliseconds) * Double(1 << exponent)
        let capped = min(base, Double(maxDelay.milliseconds))
        let jittered = max(capped * min(max(jitter, 0), 1), 1)
        return .milliseconds(Int64(jittered))
    }
}

/// How long a job keeps trying: the mapping's `retry` settings for REST, the
/// signed URL's deadline for the archive. Executors say which rules apply; the
/// runner never adds limits of its own.
public struct RetryRules: Sendable, Hashable {
    /// Backoff between attempts.
    public var backoff: RetryPolicy
    /// At most this many attempts; `nil`: no count limit (a deadline bounds them).
    public var maxAttempts: Int?
    /// No attempt starts later than this long after the first one.
    public var giveUpAfter: Duration?
    /// Past this instant the effect is impossible: the job ends `expired`.
    public var deadline: Timestamp?
    /// The last attempt is placed at least this long before the deadline.
    public var deadlineMargin: Duration = .seconds(1)
    /// The smallest jitter fraction (the archive keeps at least half the backoff).
    public var minimumJitter: Double = 0

    /// A limit left `nil` does not apply; `deadlineMargin` stays at its one-second default.
    public init(backoff: RetryPolicy, maxAttempts: Int?, giveUpAfter: Duration?, deadline: Timestamp? = nil, minimumJitter: Double = 0) {
        self.backoff = backoff
        self.maxAttempts = maxAttempts
        self.giveUpAfter = giveUpAfter
        self.deadline = deadline
        self.minimumJitter = minimumJitter
    }

    /// A mapping's `retry` (a `rest` target's, a flow's): backoff from 2 s up
    /// to `max_delay`, exactly `max_attempts`, none later than `give_up_after`.
    public init(settings: RetrySettings) {
        self.init(
            backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(Int64(settings.maxDelaySeconds))), maxAttempts: settings.maxAttempts,
            giveUpAfter: .seconds(Int64(settings.giveUpAfterSeconds)))
    }

    /// For kinds without settings of their own (`log`): 25 attempts within 72 hours.
    public static let standard = RetryRules(
        backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(3600)),
        maxAttempts: 25, giveUpAfter: .seconds(72 * 3600))
}

/// What an executor found, before any decision about the job's next state.
public enum AttemptOutcome: Sendable, Hashable {
    case succeeded(capture: JSONValue?)
    /// Worth another attempt; `retryAfter` (e.g. from `Retry-After`) is a lower bound on the wait.
    case transient(reason: String, retryAfter: Duration?)
    case permanent(reason: String)
    case held(HoldReason)
    /// The effect's deadline passed.
    case expired(reason: String)
    /// Not attempted: the downstream is paused (a 429's `Retry-After`, an
    /// open circuit breaker, its rate limit). The job waits until `until`
    /// and the attempt is not counted.
    case postponed(until: Timestamp, reason: String)
}

/// The one retry decision: an attempt's outcome, the job's rules, its attempt
/// count and first-attempt time, and now → the job's next state and due time.
///
/// Guarantees (property-tested): never more than `maxAttempts` attempts; no
/// attempt due after `giveUpAfter` from the first; none past the deadline
/// (less its margin); a `retryAfter` is never shortened.
public enum RetryDecision {
    /// Pure: `attempt` is the attempt that just ended (1 for the first), `jitter`
    /// a random fraction in [0, 1) the caller draws. A retry is always due at
    /// least 1 ms after `now`; what cannot be retried in the rules' limits is
    /// `dead` (count, `giveUpAfter`) or `expired` (deadline), with the reason kept.
    public static func decide(
        _ outcome: AttemptOutcome, rules: RetryRules, attempt: Int, firstAttemptAt: Timestamp, now: Timestamp,
        jitter: Double
    ) -> JobCompletion {
        switch outcome {
        case .succeeded(let capture): return .done(capture: capture)
        case .permanent(let reason): return .dead(reason: reason)
        case .held(let reason): return .held(reason)
        case .postponed(let until, let reason): return .postponed(until: max(until, now.adding(.milliseconds(1))), reason: reason)
        case .expired(let reason): return .expired(reason: reason)
        case .transient(let reason, let retryAfter):
            if let maxAttempts = rules.maxAttempts, attempt >= maxAttempts {
                return .dead(reason: "gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(reason)")
            }
            // A downstream's wait is a lower bound on the backoff, never a
            // replacement (`Retry-After: 0` must not mean a retry every millisecond),
            // and is capped at a year so absurd values cannot overflow the clock.
            let lowerBound = retryAfter.map { now.adding(min($0, RetryDecision.longestWait)) }
            let fraction = rules.minimumJitter + (1 - rules.minimumJitter) * min(max(jitter, 0), 1)
            let backoff = now.adding(rules.backoff.delay(afterAttempt: attempt, jitter: fraction))
            var due = max(lowerBound ?? backoff, backoff)
            if let giveUpAfter = rules.giveUpAfter {
                let giveUpAt = firstAttemptAt.adding(giveUpAfter)
                if now >= giveUpAt {
                    return .dead(reason: "gave up after \(hours(giveUpAfter)) (\(attempt) attempt\(attempt == 1 ? "" : "s")): \(reason)")
                }
                if due > giveUpAt {
                    if let lowerBound, lowerBound > giveUpAt {
                        return .dead(reason: "gave up: the downstream asked to wait past give_up_after (\(hours(giveUpAfter))): \(reason)")
                    }
                    due = giveUpAt
                }
            }
            if let deadline = rules.deadline {
                let lastChance = deadline.adding(.zero - rules.deadlineMargin)
                if now >= lastChance {
                    return .expired(
                        reason:
                            "deadline \(MappingClock.iso8601(milliseconds: deadline.milliseconds)) passed after \(attempt) attempt(s); last: \(reason)"
                    )
                }
                if due > lastChance {
                    if let lowerBound, lowerBound > lastChance {
                        return .expired(reason: "the downstream asked to wait past the deadline after \(attempt) attempt(s); last: \(reason)")
                    }
                    due = lastChance
                }
            }
            return .retry(at: max(due, now.adding(.milliseconds(1))), reason: reason)
        }
    }

    /// The longest wait a downstream may ask for.
    static let longestWait: Duration = .seconds(365 * 86_400)

    static func hours(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        return seconds % 3600 == 0 ? "\(seconds / 3600) h" : "\(seconds) s"
    }
}
