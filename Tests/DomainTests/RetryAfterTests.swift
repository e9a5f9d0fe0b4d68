import Clocks
import Domain
import Testing

@Suite("Retry-After")
struct RetryAfterTests {
    @Test func retryAfterSecondsAndHTTPDates() {
        let now = Timestamp(seconds: 784_111_767)  // Sun, 06 Nov 1994 08:49:27 GMT
        #expect(RetryAfter.delay("120", now: now) == .seconds(120))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:17 GMT", now: now) == .zero)
        #expect(RetryAfter.delay("soon", now: now) == nil)
        #expect(RetryAfter.delay("-5", now: now) == nil)
    }

    @Test func surroundingWhitespaceIsIgnored() {
        let now = Timestamp(seconds: 0)
        #expect(RetryAfter.delay(" \t30 ", now: now) == .seconds(30))
    }
}
