import Clocks
import Domain
import Testing

@Suite("The retry decision")
struct RetryDecisionTests {
    let start = Timestamp(seconds: 1_800_000_000)

    func rules(maxAttempts: Int? = 25, giveUpAfter: Duration? = .seconds(72 * 3600), deadline: Timestamp? = nil) -> RetryRules {
        RetryRules(
            backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(3600)),
            maxAttempts: maxAttempts, giveUpAfter: giveUpAfter, deadline: deadline)
    }

    @Test func finalOutcomesPassThrough() {
        let r = rules()
        #expect(
            RetryDecision.decide(.succeeded(capture: nil), rules: r, attempt: 1, firstAttemptAt: start, now: start, jitter: 0.5)
                == .done(capture: nil))
        #expect(
            RetryDecision.decide(.permanent(reason: "400"), rules: r, attempt: 1, firstAttemptAt: start, now: start, jitter: 0.5)
                == .dead(reason: "400"))
        #expect(
            RetryDecision.decide(.held(.crashedDuringAttempt), rules: r, attempt: 1, firstAttemptAt: start, now: start, jitter: 0.5)
                == .held(.crashedDuringAttempt))
    }

    /// Regression: a weekend outage with `max_attempts: 200` was cut at 25 attempts.
    @Test func maxAttemptsAboveTwentyFiveIsHonoured() {
        let decision = RetryDecision.decide(
            .transient(reason: "503", retryAfter: nil), rules: rules(maxAttempts: 200, giveUpAfter: .seconds(7 * 86_400)),
            attempt: 60, firstAttemptAt: start, now: start.adding(.seconds(86_400)), jitter: 0.5)
        guard case .retry = decision else {
            Issue.record("attempt 60 of 200 within the window must be retried, got \(decision)")
            return
        }
    }

    @Test func giveUpAfterCountsFromTheFirstAttempt() {
        let r = rules(maxAttempts: nil, giveUpAfter: .seconds(3600))
        let late = RetryDecision.decide(
            .transient(reason: "503", retryAfter: nil), rules: r, attempt: 3, firstAttemptAt: start,
            now: start.adding(.seconds(3600)), jitter: 0.5)
        #expect(late == .dead(reason: "gave up after 1 h (3 attempts): 503"))
        // The last retry is placed at the give-up time, not after it.
        let near = RetryDecision.decide(
            .transient(reason: "503", retryAfter: nil), rules: r, attempt: 20, firstAttemptAt: start,
            now: start.adding(.seconds(3590)), jitter: 0.99)
        #expect(near == .retry(at: start.adding(.seconds(3600)), reason: "503"))
    }

    @Test func aDeadlineEndsInExpiredNotDead() {
        let deadline = start.adding(.seconds(60))
        let r = rules(maxAttempts: nil, giveUpAfter: nil, deadline: deadline)
        #expect(
            RetryDecision.decide(
                .transient(reason: "HTTP 503", retryAfter: nil), rules: r, attempt: 4, firstAttemptAt: start,
                now: deadline, jitter: 0.5)
                == .expired(reason: "deadline 2027-01-15T08:01:00.000Z passed after 4 attempt(s); last: HTTP 503"))
    }

    /// Regression (review): `Retry-After: 99999999999999999` overflowed the clock and
    /// trapped; `Retry-After: 0` replaced the backoff with a retry 1 ms later.
    @Test func retryAfterIsALowerBoundOnTheBackoffAndCannotOverflow() {
        let r = rules(maxAttempts: nil, giveUpAfter: nil)
        let zero = RetryDecision.decide(
            .transient(reason: "429", retryAfter: .zero), rules: r, attempt: 5, firstAttemptAt: start, now: start, jitter: 0.99)
        guard case .retry(let at, _) = zero else {
            Issue.record("expected a retry")
            return
        }
        #expect(at >= start.adding(.seconds(30)), "attempt 5's backoff (about 32 s) still applies")
        let huge = RetryDecision.decide(
            .transient(reason: "429", retryAfter: .seconds(99_999_999_999_999_999)), rules: r, attempt: 1,
            firstAttemptAt: start, now: start, jitter: 0.5)
        guard case .retry(let later, _) = huge else {
            Issue.record("expected a retry")
            return
        }
        #expect(later >= start.adding(.seconds(364 * 86_400)))
    }

    /// Properties over many seeded random cases: never more than `maxAttempts`,
    /// never due past `giveUpAfter` or the deadline (less its margin), never
    /// sooner than `Retry-After`, never in the past.
    @Test func propertiesHoldForRandomInputs() {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<20_000 {
            let maxAttempts: Int? = Bool.random(using: &generator) ? Int.random(in: 1...300, using: &generator) : nil
            let giveUp: Duration? = Bool.random(using: &generator) ? .seconds(Int64.random(in: 1...(7 * 86_400), using: &generator)) : nil
            let deadline: Timestamp? =
                Bool.random(using: &generator)
                ? start.adding(.seconds(Int64.random(in: 1...(7 * 86_400), using: &generator))) : nil
            var r = RetryRules(
                backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(Int64.random(in: 1...7200, using: &generator))),
                maxAttempts: maxAttempts, giveUpAfter: giveUp, deadline: deadline)
            r.minimumJitter = Bool.random(using: &generator) ? 0.5 : 0
            let attempt = Int.random(in: 1...400, using: &generator)
            let now = start.adding(.seconds(Int64.random(in: 0...(8 * 86_400), using: &generator)))
            let retryAfter: Duration? = Bool.random(using: &generator) ? .seconds(Int64.random(in: 0...20_000, using: &generator)) : nil
            let decision = RetryDecision.decide(
                .transient(reason: "x", retryAfter: retryAfter), rules: r, attempt: attempt,
                firstAttemptAt: start, now: now, jitter: Double.random(in: 0..<1, using: &generator))
            guard case .retry(let at, _) = decision else { continue }
            if let maxAttempts { #expect(attempt < maxAttempts) }
            if let giveUp { #expect(at <= start.adding(giveUp)) }
            if let deadline { #expect(at <= deadline.adding(.zero - r.deadlineMargin)) }
            if let retryAfter { #expect(at >= now.adding(retryAfter)) }
            #expect(at > now)
        }
    }
}

/// A small seeded generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
