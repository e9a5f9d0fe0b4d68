import Clocks
import Domain
import Testing

@testable import CurlClient
@testable import RESTDelivery

@Suite("RestSender: what an answer means for the downstream's gate")
struct RestSenderTests {
    let now = Timestamp(seconds: 1_800_000_000)

    @Test func a429OrA503WithRetryAfterPausesTheDownstream() {
        let throttled = RestSender.gateResult(CurlResponse(status: 429, headers: [("Retry-After", "3")], body: []), now: now)
        #expect(throttled == .throttled(retryAfter: .seconds(3)))
        // BambooHR throttles with 503 and Retry-After: a pause, not a breaker failure.
        let busy = RestSender.gateResult(CurlResponse(status: 503, headers: [("retry-after", "2")], body: []), now: now)
        #expect(busy == .throttled(retryAfter: .seconds(2)))
        #expect(RestSender.gateResult(CurlResponse(status: 503, headers: [], body: []), now: now) == .failed)
        #expect(RestSender.gateResult(CurlResponse(status: 201, headers: [], body: []), now: now) == .answered)
        #expect(RestSender.gateResult(CurlResponse(status: 400, headers: [], body: []), now: now) == .answered)
    }
}
