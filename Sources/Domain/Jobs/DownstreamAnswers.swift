import Foundation
import JSON
import Mapping

/// How the bridge reads a downstream's answer, one table per target kind, in
/// one place. Executors do the I/O and report the answer here; what it means
/// for the job (retry, dead, expired) is decided by these tables and then by
/// `RetryDecision`.
public enum DownstreamAnswers {
    /// Statuses that say "try again later" to any HTTP client.
    public static func isRetryableStatus(_ status: Int) -> Bool {
        switch status {
        case 408, 425, 429, 500...599: return true
        default: return false
        }
    }

    /// A REST target's answer: the mapping's `success` list, else retryable
    /// statuses are transient and everything else permanent.
    public enum RestAnswer: Sendable, Hashable {
        case success
        case transient
        case permanent
    }

    /// `success` is checked first: a status the mapping lists there is never retried, even 429.
    public static func rest(status: Int, success: [Int]) -> RestAnswer {
        if success.contains(status) { return .success }
        return isRetryableStatus(status) ? .transient : .permanent
    }

    /// An answer of a `rest` target or flow step: a retryable status the
    /// mapping does not list in `success` is a retry before any rule is read
    /// (a rule about the body, such as "no record found: fail", must not turn
    /// a throttled or failing server into a failed hire); else the mapping's
    /// first matching `outcomes` rule (evaluated in `scope`, a flow step's),
    /// else the status (`rest(status:success:)`).
    public static func rest(_ response: JSONValue, status: Int, target: RestTarget, scope: EvaluationScope? = nil) -> (
        outcome: ResponseOutcome, rule: String?
    ) {
        let byStatus = rest(status: status, success: target.success)
        if byStatus == .transient { return (.retry, nil) }
        if let rule = target.matchingRule(response, in: scope) { return (rule.outcome, rule.source) }
        return (byStatus == .success ? .success : .fail, nil)
    }

    /// A signed file URL's answer (the CV archive).
    public enum ArchiveAnswer: Sendable, Hashable {
        /// Retry before the URL's deadline; `metric` names the failure class.
        case transient(metric: String)
        /// The URL stopped working because it expired.
        case expired(String)
        /// Permanent: the reason says what it is.
        case permanent(String)
        /// 404/410: permanent, and worth a warning (a file promised by the event is missing).
        case notFound(String)
    }

    /// S3 error codes that mean the signature or key is wrong: retrying until
    /// the deadline cannot help, and reporting it as expiry would mislead.
    public static let s3SignatureFaults: Set<String> = [
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthorizationHeaderMalformed", "AuthorizationQueryParametersError",
        "InvalidToken",
    ]

    /// `status` with the S3 error document's `Code` and `Message` when the body
    /// could be read; `pastExpiry` when the URL's own expiry has passed.
    public static func archive(status: Int, s3Error: S3ErrorDocument?, pastExpiry: Bool) -> ArchiveAnswer {
        switch status {
        case 400, 403:
            if let s3Error {
                if s3SignatureFaults.contains(s3Error.code) {
                    return .permanent("HTTP \(status) \(s3Error.code): the URL's signature or key is not valid (not an expiry)")
                }
                if s3Error.code == "ExpiredToken" || (s3Error.code == "AccessDenied" && s3Error.message.lowercased().contains("expired")) {
                    return .expired("HTTP \(status) \(s3Error.code): \(s3Error.message)")
                }
            }
            if pastExpiry { return .expired("HTTP \(status) after the signed URL's expiry") }
            // Before expiry an unexplained 403 may be clock skew or a transient storage fault.
            return .transient(metric: "http_4xx")
        case 404, 410:
            return .notFound("HTTP \(status): the file is not at the signed URL")
        default:
            if isRetryableStatus(status) { return .transient(metric: status >= 500 ? "http_5xx" : "http_4xx") }
            return .permanent("HTTP \(status) from the file server")
        }
    }
}

/// The `Code` and `Message` of an S3-style XML error body
/// (`<Error><Code>AccessDenied</Code><Message>Request has expired</Message>…`).
///
/// Read by hand: two fixed, unnested elements of a documented format; an XML
/// parser would add a dependency and more to trust for no gain.
public struct S3ErrorDocument: Sendable, Hashable {
    /// The `<Code>` element (`AccessDenied`, `ExpiredToken`): what `DownstreamAnswers.archive` decides on.
    public var code: String
    /// The `<Message>` element, trimmed; "" when the body has none.
    public var message: String

    /// A document from known fields, taken as given (no check of `code`).
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// Reads the first 16 KiB of a response body; nil unless it contains `<Error`
    /// and a non-empty, alphanumeric `<Code>` element.
    public init?(body: [UInt8]) {
        let text = String(decoding: body.prefix(16 * 1024), as: UTF8.self)
        guard text.contains("<Error"), let code = S3ErrorDocument.element("Code", in: text), !code.isEmpty,
            code.allSatisfy({ $0.isLetter || $0.isNumber })
        else { return nil }
        self.code = code
        self.message = S3ErrorDocument.element("Message", in: text) ?? ""
    }

    static func element(_ name: String, in text: String) -> String? {
        guard let open = text.range(of: "<\(name)>"), let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex) else {
            return nil
        }
        return String(text[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
