import TestSupport
import Testing

@testable import Clocks
@testable import Domain

@Suite("Signed URLs")
struct SignedURLTests {
    let jobylonCV =
        "https://jobylon.com/jbl-web-bucket/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf?AWSAccessKeyId=AccessKeyAWSUser&Signature=b8fAztRIN6pZWP%2F0hI4ZSmZevl0%3D&Expires=1708531474"

    @Test func expiryFromTheDocumentedExample() {
        let url = SignedURL(jobylonCV)
        #expect(url.expiry == 1_708_531_474)
        #expect(url.deadline(receivedAt: Timestamp(seconds: 1)) == Timestamp(seconds: 1_708_531_474))
        #expect(url.withoutQuery == "https://jobylon.com/jbl-web-bucket/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf")
        #expect(url.text == jobylonCV, "the URL itself is never re-encoded")
        #expect(url.queryParameters["Signature"] == "b8fAztRIN6pZWP%2F0hI4ZSmZevl0%3D")
    }

    @Test func s3V4AndMissingExpiry() {
        let v4 = SignedURL(
            "https://b.s3.amazonaws.com/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261129T101500Z&X-Amz-Expires=86400&X-Amz-Signature=ab")
        let expected: Int64 = 1_795_947_300 + 86_400  // 2026-11-29T10:15:00Z + one day
        #expect(v4.expiry == expected)
        let plain = SignedURL("https://files.example/cv.pdf")
        #expect(plain.expiry == nil)
        #expect(plain.deadline(receivedAt: Timestamp(seconds: 1000)) == Timestamp(seconds: 1000 + 86_400))
        #expect(SignedURL("https://x/y?Expires=abc").expiry == nil)
        #expect(SignedURL("https://x/y?Expires=5#frag").expiry == 5)
        #expect(SignedURL("https://x/y#frag?Expires=5").withoutQuery == "https://x/y")
    }

    @Test("random URLs never crash the parser", arguments: 0..<200)
    func fuzz(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed))
        let pieces = [
            "https://", "x", "/", "?", "&", "=", "#", "Expires", "X-Amz-Date", "X-Amz-Expires", "20261129T101500Z", "123", "%2B", "+", "é", "",
        ]
        var text = ""
        for _ in 0..<Int.random(in: 0...15, using: &rng) { text += pieces.randomElement(using: &rng) ?? "" }
        let url = SignedURL(text)
        _ = url.expiry
        #expect(url.withoutQuery.count <= text.count)
        #expect(url.text == text)
    }
}
