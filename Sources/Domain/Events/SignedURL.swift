import Clocks
import Mapping

/// A pre-signed file URL as Jobylon sends them (S3 style), read without ever
/// re-encoding it: the URL is used byte-exact for the download (`%2B` turned
/// into `+` would break the signature, and the 403 would be misread as
/// "expired"); only its expiry and its query-less form are derived here.
public struct SignedURL: Sendable, Hashable {
    /// The URL exactly as received: download with this, never a re-encoded form.
    public let text: String

    /// Wraps the text as is (no parsing, no validation, no normalisation).
    public init(_ text: String) {
        self.text = text
    }

    /// Unix seconds after which the signature is no longer valid: S3 v2
    /// `Expires=<unix>`, or v4 `X-Amz-Date=<yyyyMMddTHHmmssZ>` + `X-Amz-Expires=<seconds>`.
    public var expiry: Int64? {
        let parameters = queryParameters
        if let expires = parameters["Expires"].flatMap({ Int64($0) }), expires > 0 { return expires }
        if let date = parameters["X-Amz-Date"].flatMap(SignedURL.amzDate), let seconds = parameters["X-Amz-Expires"].flatMap({ Int64($0) }) {
            return date + seconds
        }
        return nil
    }

    /// The download deadline: the signature's expiry, else 24 hours after the webhook (Jobylon's documented lifetime).
    public func deadline(receivedAt: Timestamp) -> Timestamp {
        if let expiry { return Timestamp(seconds: expiry) }
        return receivedAt.adding(.seconds(24 * 3600))
    }

    /// Scheme, host and path without the query (which holds the signature): safe to keep in metadata.
    public var withoutQuery: String {
        var end = text.endIndex
        if let question = text.firstIndex(of: "?") { end = question }
        if let hash = text[..<end].firstIndex(of: "#") { end = hash }
        return String(text[..<end])
    }

    /// Raw (still percent-encoded) values of the query's parameters; the first occurrence wins.
    var queryParameters: [String: String] {
        guard let question = text.firstIndex(of: "?") else { return [:] }
        var query = text[text.index(after: question)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            if result[key] == nil { result[key] = parts.count > 1 ? String(parts[1]) : "" }
        }
        return result
    }

    /// `20261129T101500Z` → Unix seconds.
    static func amzDate(_ text: String) -> Int64? {
        let digits = Array(text.utf8)
        guard digits.count == 16, digits[8] == UInt8(ascii: "T"), digits[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard digits[i] >= 48 && digits[i] <= 57 else { return nil }
                value = value * 10 + Int(digits[i] - 48)
            }
            return value
        }
        guard let y = number(0..<4), let m = number(4..<6), let d = number(6..<8), let hh = number(9..<11), let mm = number(11..<13),
            let ss = number(13..<15), (1...12).contains(m), (1...31).contains(d), hh < 24, mm < 60, ss < 61
        else { return nil }
        let days = CivilCalendar.daysFromCivil(y, m, d)
        return Int64(days) * 86_400 + Int64(hh * 3600 + mm * 60 + ss)
    }
}
