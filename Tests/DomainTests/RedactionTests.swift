import Domain
import Mapping
import TestSupport
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

    /// The pass before its prefilters and the hand-written digit runs: every
    /// pattern through `Regex`, the reference the fast pass must equal.
    static func referencePatterns(_ text: String) -> String {
        let mask = Redactor.mask
        var out = text
        out = out.replacing(#/(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+\/=-]{8,}/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(
            #/(?i)\b(?:access_token|refresh_token|id_token|x-api-key|api-key|api_key|apikey|token|password|passwd|client_secret|secret)["']?\s*[:=]\s*["']?[^\s"',;&}]+/#
                .wordBoundaryKind(.simple), with: mask)
        out = out.replacing(#/(?i)\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(#/[\p{L}\p{N}._%+-]+@[\p{L}\p{N}.-]+\.\p{L}{2,}/#, with: mask)
        out = out.replacing(#/\b(?:[0-9]{2})?[0-9]{6}[-+][0-9]{4}\b/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(#/\b(?=[A-Za-z0-9_.-]*[0-9])[A-Za-z0-9_.-]{32,}/#.wordBoundaryKind(.simple), with: mask)
        out = out.replacing(#/\+?[0-9][0-9 ()\-]{4,}[0-9]/#) { match -> String in
            let text = String(match.output)
            if text.filter(\.isNumber).count < 8 || text.wholeMatch(of: #/[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{1,2})?/#) != nil { return text }
            return mask
        }
        return out
    }

    /// Random texts from pieces that start, end or break every pattern (digits,
    /// separators, keywords, `@`, letters, non-ASCII, a combining mark, CRLF).
    @Test func fastPassEqualsTheRegexReference() {
        let pieces = [
            "0", "1", "2", "9", "12", "2026", "-", "+", " ", "(", ")", ":", "=", "\"", "'", ".", "_", "@", "/", "a", "Z", "se", "SE45",
            "token", "Token", "password", "secret", "api_key", "X-Api-Key", "bearer ", "Basic ", "abcdefgh", "example.com", "å", "Ö", "٣",
            "\u{301}", "\r\n", "\n", ",", "T", "5000 0000", "2026-12-01", "19121212-1212",
        ]
        var generator = SeededGenerator(seed: 0x5eed_1234)
        for _ in 0..<1500 {
            let count = Int.random(in: 1...24, using: &generator)
            let text = (0..<count).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            #expect(Redactor.redactPatterns(text) == RedactionTests.referencePatterns(text), "\(text.debugDescription)")
        }
    }

    @Test(arguments: [
        "", "no digits here", "12345678", "+46 70 123 45 67", "2026-12-01", "2026-12-01 10", "2026-12-01 100", "(08) 123-456", "1234567",
        "a 1 2 3 4 5 6 7 8 b", "+-12345678", "1\u{301}2345678", "12345678 -", "signed URL expired at 2025-12-03T09:07:59.000Z (not requested)",
    ])
    func digitRunsMatchTheRegex(_ text: String) {
        #expect(Redactor.redactPatterns(text) == RedactionTests.referencePatterns(text))
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
