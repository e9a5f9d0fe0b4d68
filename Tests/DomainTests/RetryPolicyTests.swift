import JSON
import Testing

@testable import Domain

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test func exponentialWithFullJitterAndACap() {
        let policy = RetryPolicy(firstDelay: .seconds(2), maxDelay: .seconds(60))
        #expect(policy.delay(afterAttempt: 1, jitter: 0.999) <= .seconds(2))
        #expect(policy.delay(afterAttempt: 1, jitter: 0.999) > .milliseconds(1990))
        #expect(policy.delay(afterAttempt: 3, jitter: 0.999) > .milliseconds(7900))
        #expect(policy.delay(afterAttempt: 20, jitter: 0.999) <= .seconds(60))
        #expect(policy.delay(afterAttempt: 20, jitter: 0) >= .milliseconds(1))
        #expect(policy.delay(afterAttempt: 64, jitter: 0.5) <= .seconds(60))
    }
}
