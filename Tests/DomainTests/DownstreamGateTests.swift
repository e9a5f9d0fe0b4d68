import Clocks
import Domain
import TestSupport
import Testing

@Suite("Downstream gate: rate, concurrency, 429 pause, circuit breaker")
struct DownstreamGateTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    @Test func aRateLimitAdmitsCountPerWindowAndSaysWhenTheNextMayGo() {
        var gate = DownstreamGate()
        let rules = DownstreamGate.Rules(rate: (count: 2, window: .seconds(5)))
        #expect(gate.admit(now: t0, rules: rules) == .go)
        gate.finished(.answered, now: t0, rules: rules)
        #expect(gate.admit(now: t0.adding(.seconds(1)), rules: rules) == .go)
        gate.finished(.answered, now: t0.adding(.seconds(1)), rules: rules)
        guard case .wait(let until, let reason) = gate.admit(now: t0.adding(.seconds(2)), rules: rules) else {
            Issue.record("a third request in the window went through")
            return
        }
        #expect(until == t0.adding(.seconds(5)))
        #expect(reason.contains("rate limit 2 per"))
        #expect(gate.admit(now: t0.adding(.seconds(5)), rules: rules) == .go)
    }

    @Test("never more than the rate in any window", arguments: 0..<50)
    func neverMoreThanTheRateInAnyWindow(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 7)
        let rules = DownstreamGate.Rules(rate: (count: 3, window: .seconds(2)))
        var gate = DownstreamGate()
        var now = t0
        var sent: [Timestamp] = []
        for _ in 0..<200 {
            now = now.adding(.milliseconds(Int64.random(in: 0...400, using: &rng)))
            if gate.admit(now: now, rules: rules) == .go {
                sent.append(now)
                gate.finished(.answered, now: now, rules: rules)
            }
        }
        for (index, time) in sent.enumerated() {
            let inWindow = sent[index...].prefix { $0 < time.adding(.seconds(2)) }
            #expect(inWindow.count <= 3, "seed \(seed)")
        }
    }

    @Test func aConcurrencyLimitCountsRequestsInFlight() {
        var gate = DownstreamGate()
        let rules = DownstreamGate.Rules(concurrency: 1)
        #expect(gate.admit(now: t0, rules: rules) == .go)
        guard case .wait = gate.admit(now: t0, rules: rules) else {
            Issue.record("two in flight")
            return
        }
        gate.finished(.answered, now: t0, rules: rules)
        #expect(gate.admit(now: t0, rules: rules) == .go)
    }

    @Test func aThrottleAnswerPausesTheWholeDownstream() {
        var gate = DownstreamGate()
        let rules = DownstreamGate.Rules()
        #expect(gate.admit(now: t0, rules: rules) == .go)
        gate.finished(.throttled(retryAfter: .seconds(7)), now: t0, rules: rules)
        #expect(
            gate.admit(now: t0.adding(.seconds(6)), rules: rules)
                == .wait(until: t0.adding(.seconds(7)), reason: "the downstream asked to wait (429)"))
        #expect(gate.admit(now: t0.adding(.seconds(7)), rules: rules) == .go)
    }

    @Test func aThrottleAnswerWithoutRetryAfterPausesForTheConfiguredTime() {
        var gate = DownstreamGate()
        #expect(gate.admit(now: t0, rules: DownstreamGate.Rules()) == .go)
        gate.finished(.throttled(retryAfter: nil), now: t0, rules: DownstreamGate.Rules())
        #expect(gate.admit(now: t0.adding(.seconds(59)), rules: DownstreamGate.Rules()) != .go, "a minute by default")
        var fortnox = DownstreamGate()
        let rules = DownstreamGate.Rules(throttlePause: .seconds(5))
        #expect(fortnox.admit(now: t0, rules: rules) == .go)
        fortnox.finished(.throttled(retryAfter: nil), now: t0, rules: rules)
        #expect(fortnox.admit(now: t0.adding(.seconds(4)), rules: rules) != .go)
        #expect(fortnox.admit(now: t0.adding(.seconds(5)), rules: rules) == .go)
    }

    @Test func theBreakerOpensAfterFailuresInARowLetsOneProbeThroughAndClosesOnItsSuccess() {
        var gate = DownstreamGate()
        let rules = DownstreamGate.Rules(breakerAfter: 3, breakerOpen: .seconds(30))
        for _ in 0..<2 {
            #expect(gate.admit(now: t0, rules: rules) == .go)
            gate.finished(.failed, now: t0, rules: rules)
        }
        #expect(gate.breaker(at: t0) == .closed)
        #expect(gate.admit(now: t0, rules: rules) == .go)
        gate.finished(.answered, now: t0, rules: rules)
        for _ in 0..<3 {
            #expect(gate.admit(now: t0, rules: rules) == .go)
            gate.finished(.failed, now: t0, rules: rules)
        }
        #expect(gate.breaker(at: t0) == .open)
        guard case .wait(let until, _) = gate.admit(now: t0.adding(.seconds(10)), rules: rules) else {
            Issue.record("sent while open")
            return
        }
        #expect(until == t0.adding(.seconds(30)))
        // Half-open: one probe; the others wait for its result.
        #expect(gate.admit(now: t0.adding(.seconds(30)), rules: rules) == .go)
        guard case .wait = gate.admit(now: t0.adding(.seconds(30)), rules: rules) else {
            Issue.record("a second probe")
            return
        }
        gate.finished(.failed, now: t0.adding(.seconds(31)), rules: rules)
        #expect(gate.breaker(at: t0.adding(.seconds(32))) == .open, "a failed probe opens it again")
        #expect(gate.admit(now: t0.adding(.seconds(61)), rules: rules) == .go)
        gate.finished(.answered, now: t0.adding(.seconds(61)), rules: rules)
        #expect(gate.breaker(at: t0.adding(.seconds(61))) == .closed)
        #expect(gate.admit(now: t0.adding(.seconds(61)), rules: rules) == .go)
    }
}
