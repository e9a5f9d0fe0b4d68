import Clocks

/// Where rotating OAuth2 refresh tokens live between refreshes and across
/// restarts. Every change is a compare-and-set on the token it replaces, so a
/// write based on an old token (a refresh racing an `oauth authorize`) changes
/// nothing; every method returns once committed (fsync), because a rotated
/// token the store lost would be lost for good.
public protocol RefreshCredentialStore: Sendable {
    /// Every stored row of `name` (the shared one and each company's).
    func refreshCredentials(named name: String) async throws -> [RefreshCredential]
    /// Every stored row (for `oauth status` and the renewal service).
    func allRefreshCredentials() async throws -> [RefreshCredential]
    /// Records that a refresh with `token` is being sent: after a crash, the
    /// mark tells that its answer may have rotated the token.
    func markRefreshStarted(name: String, companyID: String, token: String, at: Timestamp) async throws -> Bool
    /// Replaces `previous` by `next` (rotated or, from an endpoint that does
    /// not rotate, the same) and clears the mark and any problem.
    func recordRefresh(name: String, companyID: String, previous: String, next: String, expiresAt: Timestamp?, at: Timestamp) async throws
        -> Bool
    /// Clears the mark: the endpoint answered without using the token (down, or the client refused).
    func clearRefreshMark(name: String, companyID: String, token: String) async throws
    /// Records why `token` can no longer be used.
    func recordRefreshProblem(name: String, companyID: String, token: String, problem: CredentialProblem) async throws -> Bool
    /// Stores the first refresh token of an authorization (replacing any
    /// earlier row of the name and company) and, in the same transaction,
    /// releases the jobs held for want of it; returns how many.
    func storeAuthorized(_ credential: RefreshCredential, now: Timestamp) async throws -> Int
}
