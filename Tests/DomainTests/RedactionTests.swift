import Domain
import Mapping
import Testing

@Suite("Redaction of personal data and secrets")
struct RedactionTests {
    @Test(arguments: [
        "IBAN SE45 5000 0000 0583 9825 7466 is not valid",
        "iban SE4550000000058398257466 rejected",
        "contact bruce.wayne@example.com",
        "personnummer 19121212-1212 and 121212+1212",
        "phone +46 70 123 45 67 or 070-123 45 67",
        "account 8327-9 123 456 789-0",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123",
        "password=hunter2hunter2",
        "token: 4f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d",
        "IBAN:SE4550000000058398257466",
        "iban se45 5000 0000 0583 9825 7466",
        "mail åsa.öberg@företag.se",
        "X-Api-Key: hunter2hunter2",
    ])
    func patternsAreMasked(_ text: String) {
        let redacted = Redactor.redactPatterns(text)
        #expect(redacted.contains(Redactor.mask), "\(redacted)")
        for secret in [
            "5000 0000", "50000000", "5000000005", "åsa", "bruce.wayne", "1212-1212", "121212+1212", "123 45 67", "123 456 789", "eyJ", "hunter2",
            "4f9a1c",
        ] {
            #expect(!redacted.contains(secret), "\(redacted)")
        }
    }

    @Test func ordinaryTextStaysReadable() {
        let text = "HTTP 422: start_date 2026-12-01 must be after 2026-11-30; field employee.manager is required (code 42, 100000 bytes)"
        #expect(Redactor.redactPatterns(text) == text)
    }

    @Test func valuesTheJobSentAreMaskedInEveryFormTheyComeBack() {
        let payload = Array(
            #"{"method":"POST","url":"https://erp/x","body":{"name":"Selina Kyle","bank":{"account":"1234567"}},"query":{"q":"Gotham"}}"#.utf8)
        let redactor = Redactor(payload: payload)
        let text = #"{"error":"Selina Kyle: account 1234 567 unknown in Gotham"}"#
        let redacted = redactor.redact(text)
        #expect(!redacted.contains("Selina"))
        #expect(!redacted.contains("1234 567"))
        #expect(!redacted.contains("Gotham"))
        #expect(redacted.contains("unknown"))
    }
}

@Suite("Downstream answers")
struct DownstreamAnswersTests {
    @Test func restTable() {
        #expect(DownstreamAnswers.rest(status: 201, success: [200, 201]) == .success)
        #expect(DownstreamAnswers.rest(status: 409, success: [200, 409]) == .success)
        for status in [408, 425, 429, 500, 503, 599] { #expect(DownstreamAnswers.rest(status: status, success: [200]) == .transient) }
        for status in [400, 401, 403, 404, 409, 422] { #expect(DownstreamAnswers.rest(status: status, success: [200]) == .permanent) }
    }

    @Test func s3ErrorDocumentsAreRead() {
        let body = Array(
            "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><RequestId>1</RequestId></Error>"
                .utf8)
        #expect(
            S3ErrorDocument(body: body)
                == S3ErrorDocument(code: "SignatureDoesNotMatch", message: "The request signature we calculated does not match"))
        #expect(S3ErrorDocument(body: Array("<html>Forbidden</html>".utf8)) == nil)
        #expect(S3ErrorDocument(body: []) == nil)
    }

    /// Regression: signature and key faults were retried until the deadline and reported as expiry.
    @Test func archiveTable() {
        let signature = S3ErrorDocument(code: "SignatureDoesNotMatch", message: "…")
        let key = S3ErrorDocument(code: "InvalidAccessKeyId", message: "…")
        let expired = S3ErrorDocument(code: "AccessDenied", message: "Request has expired")
        let denied = S3ErrorDocument(code: "AccessDenied", message: "Access Denied")
        guard case .permanent = DownstreamAnswers.archive(status: 403, s3Error: signature, pastExpiry: false) else {
            Issue.record("signature")
            return
        }
        guard case .permanent = DownstreamAnswers.archive(status: 403, s3Error: key, pastExpiry: true) else {
            Issue.record("key")
            return
        }
        guard case .expired = DownstreamAnswers.archive(status: 403, s3Error: expired, pastExpiry: false) else {
            Issue.record("expired")
            return
        }
        #expect(DownstreamAnswers.archive(status: 403, s3Error: denied, pastExpiry: false) == .transient(metric: "http_4xx"))
        #expect(DownstreamAnswers.archive(status: 403, s3Error: nil, pastExpiry: false) == .transient(metric: "http_4xx"))
        guard case .expired = DownstreamAnswers.archive(status: 403, s3Error: nil, pastExpiry: true) else {
            Issue.record("opaque past")
            return
        }
        guard case .notFound = DownstreamAnswers.archive(status: 404, s3Error: nil, pastExpiry: false) else {
            Issue.record("404")
            return
        }
        #expect(DownstreamAnswers.archive(status: 503, s3Error: nil, pastExpiry: false) == .transient(metric: "http_5xx"))
    }
}
