import Crypto
import Foundation

/// The bearer tokens Jobylon may present; several at once so a token can be
/// rotated without a window of 401s.
///
/// Only SHA-256 digests are kept, and every candidate is compared against
/// every active digest without early exit, so timing reveals neither which
/// token matched nor how much of it.
public struct WebhookTokens: Sendable {
    let digests: [SHA256.Digest]

    /// Empty strings are dropped, so an unset token never accepts an empty bearer.
    public init(_ tokens: [String]) {
        self.digests = tokens.filter { !$0.isEmpty }.map { SHA256.hash(data: Array($0.utf8)) }
    }

    /// No usable token: every request will be refused with 401.
    public var isEmpty: Bool { digests.isEmpty }
    /// How many tokens are active, for the log; the tokens themselves are never shown.
    public var count: Int { digests.count }

    /// Checks `presented` against every active token without an early exit (see the type).
    public func accepts(_ presented: String) -> Bool {
        let candidate = SHA256.hash(data: Array(presented.utf8))
        var matched = false
        for digest in digests {
            // `Digest ==` is constant-time in swift-crypto.
            if digest == candidate { matched = true }
        }
        return matched
    }

    /// Reads `Authorization: Bearer <token>` (scheme case-insensitive).
    public func acceptsAuthorization(_ header: String?) -> Bool {
        guard let header else { return false }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        return accepts(parts[1].trimmingCharacters(in: .whitespaces))
    }
}
