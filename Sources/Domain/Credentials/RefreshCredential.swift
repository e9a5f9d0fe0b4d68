import Clocks

/// Why a stored OAuth2 credential cannot give an access token: each needs an
/// operator to authorize again (`jobylon-bridge oauth authorize`), so jobs
/// that need it are held (never retried in a loop that would spend a
/// rotating refresh token twice).
public enum CredentialProblem: String, Sendable, Hashable, CaseIterable {
    /// No refresh token was ever stored for it (for this company).
    case notAuthorized = "not_authorized"
    /// The token endpoint refused the refresh token (`invalid_grant`: revoked,
    /// expired early, or the consent was withdrawn).
    case rejected
    /// A refresh was sent and its answer never stored (the daemon stopped
    /// meanwhile); the endpoint had rotated the token, so the stored one is
    /// spent.
    case interrupted
    /// The refresh token's own lifetime ran out before it was used.
    case expired
}

/// One refresh token obtained by `oauth authorize`, as the store keeps it: the
/// newest of its rotation, replaced atomically with every refresh. The access
/// tokens it yields stay in memory only.
public struct RefreshCredential: Sendable, Hashable {
    /// The name the mapping's `auth.oauth2.credential` gives.
    public var name: String
    /// The Jobylon company it belongs to; empty for one shared by every company.
    public var companyID: String
    /// The current refresh token: a secret, never logged or shown.
    public var refreshToken: String
    /// When the refresh token stops working, when the endpoint or the mapping says.
    public var expiresAt: Timestamp?
    /// When it was stored (authorized or rotated).
    public var rotatedAt: Timestamp
    /// Set while a refresh with this token is on its way; still set after a
    /// restart, it says the answer may have been lost.
    public var refreshStartedAt: Timestamp?
    /// Why it cannot be used until an operator authorizes again.
    public var problem: CredentialProblem?

    /// As stored.
    public init(
        name: String, companyID: String, refreshToken: String, expiresAt: Timestamp?, rotatedAt: Timestamp,
        refreshStartedAt: Timestamp? = nil, problem: CredentialProblem? = nil
    ) {
        self.name = name
        self.companyID = companyID
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.rotatedAt = rotatedAt
        self.refreshStartedAt = refreshStartedAt
        self.problem = problem
    }

    /// The stored credential a job of `companyID` uses, from every row of one
    /// name: the company's own; the shared one (empty company) only when no
    /// company has one of its own, so a company is never sent with another's
    /// grant or silently with a shared one meant for the others (the rule
    /// per-company variables follow too).
    public static func choose(_ rows: [RefreshCredential], company companyID: String?) -> RefreshCredential? {
        if let companyID, !companyID.isEmpty, let own = rows.first(where: { $0.companyID == companyID }) { return own }
        guard !rows.contains(where: { !$0.companyID.isEmpty }) else { return nil }
        return rows.first { $0.companyID.isEmpty }
    }

    /// Why it cannot be used at `now`, or nil when a refresh may be tried.
    public func problem(at now: Timestamp) -> CredentialProblem? {
        if let problem { return problem }
        if let expiresAt, expiresAt <= now { return .expired }
        return nil
    }

    /// The expiry alert and the proactive refresh start this long before the
    /// refresh token expires: a week, so a quiet month or a holiday does not
    /// let a 45-day token lapse, and an operator has days to act if the
    /// refresh keeps failing.
    public static let renewalWindowMilliseconds: Int64 = 7 * 24 * 3600 * 1000

    /// Whether it is close enough to its expiry to be refreshed without a job
    /// needing it (a rotating token then gets a new lifetime) and to alert.
    public func isDueForRenewal(at now: Timestamp) -> Bool {
        guard let expiresAt else { return false }
        return expiresAt.milliseconds - now.milliseconds <= RefreshCredential.renewalWindowMilliseconds
    }
}

/// What a token endpoint's answer to a refresh (RFC 6749 §6) means for the
/// stored credential.
public enum RefreshAnswer: Sendable, Hashable {
    /// New tokens: store the refresh token (the same one if the endpoint does
    /// not rotate) before the access token is used.
    case issued
    /// The refresh token is spent or revoked: hold the jobs, alert once.
    case tokenRefused(CredentialProblem)
    /// The client itself was refused (`invalid_client`, `unauthorized_client`):
    /// the refresh token was not used; fix the client id or secret.
    case clientRefused
    /// The endpoint did not handle it (down, busy): try again later with the same token.
    case unavailable

    /// Reads the status and the RFC's `error` code. A refused token after a
    /// refresh whose answer was never stored (`interruptedBefore`) is reported
    /// as `interrupted`: the lost answer had rotated it.
    public static func interpret(status: Int, error: String?, interruptedBefore: Bool) -> RefreshAnswer {
        switch status {
        case 200..<300: return .issued
        case 408, 425, 429, 500..<600: return .unavailable
        default:
            // RFC 6749 §5.2: invalid_grant is the refresh token's fault; the rest are the client's.
            if error == "invalid_grant" || (error == nil && status == 400) {
                return .tokenRefused(interruptedBefore ? .interrupted : .rejected)
            }
            return .clientRefused
        }
    }
}
