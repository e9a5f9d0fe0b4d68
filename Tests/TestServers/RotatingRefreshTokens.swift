import Foundation

/// An OAuth2 token endpoint whose refresh tokens rotate and work once, as
/// Fortnox and Visma document theirs: the state a contract server keeps and
/// the answer to one token request (RFC 6749 §4.1.3 and §6).
public struct RotatingRefreshTokens: Sendable {
    /// Authorization codes the consent would hand out (each valid once).
    public var codes: Set<String>
    public var currentRefresh: String?
    public var spentRefresh: [String] = []
    /// A spent refresh token presented again (what a correct client never does).
    public var reusedRefresh = 0
    public var refreshes = 0
    /// Access token → when it stops working.
    public var access: [String: Date] = [:]
    public var accessLifetime = 3600
    public var issuedTokens: [String] = []
    var serial = 0
    let prefix: String

    public init(prefix: String, codes: Set<String>) {
        self.prefix = prefix
        self.codes = codes
    }

    /// The status and JSON body for a token request's form `fields`:
    /// `authorization_code` (a code once) and `refresh_token` (the current one
    /// only: each refresh gives a new one), else `invalid_grant`.
    public mutating func answer(_ fields: [String: String], scope: String) -> (status: Int, body: String) {
        switch fields["grant_type"] {
        case "authorization_code":
            guard let code = fields["code"], codes.remove(code) != nil else { return (400, #"{"error": "invalid_grant"}"#) }
        case "refresh_token":
            refreshes += 1
            let presented = fields["refresh_token"] ?? ""
            guard presented == currentRefresh else {
                if spentRefresh.contains(presented) { reusedRefresh += 1 }
                return (400, #"{"error": "invalid_grant"}"#)
            }
            spentRefresh.append(presented)
        default:
            return (400, #"{"error": "unsupported_grant_type"}"#)
        }
        serial += 1
        let refresh = "\(prefix)-rt-\(serial)-0123456789abcdefghijklmnopqrstuv"
        let token = "\(prefix)-at-\(serial)-abcdefghijklmnopqrstuvwxyz012345"
        currentRefresh = refresh
        // An access token works until it expires, whatever refreshes follow.
        access[token] = Date().addingTimeInterval(TimeInterval(accessLifetime))
        issuedTokens += [refresh, token]
        return (
            200,
            #"{"access_token": "\#(token)", "refresh_token": "\#(refresh)", "scope": "\#(scope)", "expires_in": \#(accessLifetime), "token_type": "bearer"}"#
        )
    }

    /// Whether `authorization` (`Bearer …`) names an access token still valid.
    public func admits(_ authorization: String?) -> Bool {
        let presented = (authorization ?? "").replacingOccurrences(of: "Bearer ", with: "")
        return access[presented].map { $0 > Date() } ?? false
    }
}
