import Domain
import JSON
import Mapping
import Testing

@Suite("Downstream answers")
struct DownstreamAnswersTests {
    func target(_ rest: String) throws -> RestTarget {
        let text = #"{"name": "m", "when": {"event": "job/new"}, "rest": \#(rest)}"#
        guard case .rest(let target)? = MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).0?.target else { throw Failure() }
        return target
    }

    struct Failure: Error {}

    func answer(_ status: Int, _ body: String) -> JSONValue {
        RestTarget.responseValue(status: status, headers: [("Location", "/x/1")], body: Array(body.utf8))
    }

    @Test func withoutRulesTheStatusDecides() throws {
        let rest = try target(#"{"url": "https://x/y"}"#)
        #expect(DownstreamAnswers.rest(answer(201, "{}"), status: 201, target: rest).outcome == .success)
        #expect(DownstreamAnswers.rest(answer(503, "{}"), status: 503, target: rest).outcome == .retry)
        #expect(DownstreamAnswers.rest(answer(429, "{}"), status: 429, target: rest).outcome == .retry)
        #expect(DownstreamAnswers.rest(answer(400, "{}"), status: 400, target: rest).outcome == .fail)
    }

    @Test func theFirstMatchingRuleDecidesBeforeTheStatus() throws {
        let rest = try target(
            #"""
            {"url": "https://x/y", "outcomes": [
              {"if": "response.body.error.code == -32000", "then": "retry"},
              {"if": "response.body.error", "then": "fail"},
              {"if": "response.status == 400 and 'must be unique' in response.body.message", "then": "already_done"},
              {"if": "response.headers.location == '/x/1' and response.status == 418", "then": "success"}
            ]}
            """#)
        let rpcError = DownstreamAnswers.rest(answer(200, #"{"error": {"code": -32602}}"#), status: 200, target: rest)
        #expect(rpcError.outcome == .fail)
        #expect(rpcError.rule == "response.body.error")
        #expect(DownstreamAnswers.rest(answer(200, #"{"error": {"code": -32000}}"#), status: 200, target: rest).outcome == .retry)
        #expect(
            DownstreamAnswers.rest(answer(400, #"{"message": "code must be unique"}"#), status: 400, target: rest).outcome == .alreadyDone)
        #expect(DownstreamAnswers.rest(answer(400, #"{"message": "bad date"}"#), status: 400, target: rest).outcome == .fail)
        #expect(DownstreamAnswers.rest(answer(418, "not json"), status: 418, target: rest).outcome == .success, "headers are in scope")
        #expect(DownstreamAnswers.rest(answer(200, "{}"), status: 200, target: rest).rule == nil)
    }

    /// Regression: a lookup step's "nothing found: fail" rule read a 429's
    /// body (no records in it) and sent a hire to dead instead of retrying.
    @Test func aRetryableStatusIsRetriedBeforeAnyRuleReadsItsBody() throws {
        let rest = try target(
            #"{"url": "https://x/y", "outcomes": [{"if": "not (response.body.employments | first)", "then": "fail"}]}"#)
        for status in [408, 429, 500, 503] {
            #expect(DownstreamAnswers.rest(answer(status, #"{"errors": []}"#), status: status, target: rest).outcome == .retry)
        }
        #expect(DownstreamAnswers.rest(answer(200, #"{"employments": []}"#), status: 200, target: rest).outcome == .fail)
        let listed = try target(#"{"url": "https://x/y", "success": [200, 503], "outcomes": [{"if": "response.status == 503", "then": "fail"}]}"#)
        #expect(
            DownstreamAnswers.rest(answer(503, "{}"), status: 503, target: listed).outcome == .fail, "a status listed in success reaches the rules")
    }

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
