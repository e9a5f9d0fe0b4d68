import Clocks
import CurlClient
import Domain
import Foundation
import Logging
import Mapping

/// The client half of a refresh-token grant, resolved from its variables.
struct ResolvedRefreshClient: Sendable {
    var tokenURL: String
    var clientID: String
    var secret: String
    var method: OAuth2ClientCredentials.ClientAuthentication
    var lifetimeSeconds: Int64?

    /// `grant`'s endpoint and client with `variables` filled in; the names it lacks go to `missing`.
    init(_ grant: OAuth2RefreshTokenGrant, variables: VariableSource, missing: inout [String]) {
        tokenURL = variables.credential(grant.tokenURL, missing: &missing)
        clientID = variables.credential(grant.clientID, missing: &missing)
        secret = variables.credential(grant.clientSecret, missing: &missing)
        method = grant.clientAuthentication
        lifetimeSeconds = grant.refreshTokenLifetimeSeconds
    }
}

extension OAuth2Tokens {
    /// A valid access token for a job of `companyID` from the stored refresh
    /// token of `grant.credential` (the company's own, else the shared one),
    /// refreshing it when the cached access token is about to expire.
    public func token(
        for grant: OAuth2RefreshTokenGrant, companyID: String?, variables: VariableSource, client: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int
    ) async -> Result<String, Problem> {
        var missing: [String] = []
        let resolved = ResolvedRefreshClient(grant, variables: variables, missing: &missing)
        guard missing.isEmpty else { return .failure(.missingVariables(missing)) }
        guard let credentials else { return .failure(.authorizationNeeded(credential: grant.credential, problem: .notAuthorized)) }
        let rows: [RefreshCredential]
        do {
            rows = try await credentials.refreshCredentials(named: grant.credential)
        } catch {
            return .failure(.unavailable("reading credential \(grant.credential) from the store: \(error)"))
        }
        guard let row = RefreshCredential.choose(rows, company: companyID) else {
            return .failure(.authorizationNeeded(credential: grant.credential, problem: .notAuthorized))
        }
        return await accessToken(
            CredentialKey(name: row.name, companyID: row.companyID), client: resolved, http: client, clock: clock, tls: tls,
            timeoutMilliseconds: timeoutMilliseconds, force: false
        ).map(\.token)
    }

    /// The cached access token of `key`, or the result of the one refresh of
    /// it that runs at a time (`force` refreshes even a valid one: the
    /// renewal of a refresh token close to its expiry).
    func accessToken(
        _ key: CredentialKey, client resolved: ResolvedRefreshClient, http: CurlClient, clock: any WallClock, tls: RestExecutor.TLSSettings,
        timeoutMilliseconds: Int, force: Bool
    ) async -> Result<Cached, Problem> {
        if !force, let cached = refreshed[key], cached.renewAt > clock.now() { return .success(cached) }
        if let running = refreshing[key] { return await running.value }
        guard let credentials else { return .failure(.authorizationNeeded(credential: key.name, problem: .notAuthorized)) }
        let task = Task {
            await self.refresh(
                key, client: resolved, store: credentials, http: http, clock: clock, tls: tls, timeoutMilliseconds: timeoutMilliseconds)
        }
        refreshing[key] = task
        let result = await task.value
        refreshing[key] = nil
        switch result {
        case .success(let fresh): refreshed[key] = fresh
        // A renewal that failed for a passing reason leaves a still valid access token in use.
        case .failure(.unavailable), .failure(.missingVariables): break
        case .failure: refreshed[key] = nil
        }
        return result
    }

    /// Drops the cached access token of a stored credential that the
    /// downstream answered 401 to; one that another job has already replaced
    /// stays (each replacement spends a rotation).
    public func invalidate(_ grant: OAuth2RefreshTokenGrant, refused: String?) {
        refreshed = refreshed.filter { $0.key.name != grant.credential || $0.value.token != refused }
    }

    /// One refresh (RFC 6749 §6), run by one task per credential at a time:
    /// marks the stored token as being spent, asks the endpoint, and commits
    /// the new refresh token before the access token is handed out.
    func refresh(
        _ key: CredentialKey, client resolved: ResolvedRefreshClient, store: any RefreshCredentialStore, http: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int
    ) async -> Result<Cached, Problem> {
        let needed = { (problem: CredentialProblem) in Result<Cached, Problem>.failure(.authorizationNeeded(credential: key.name, problem: problem)) }
        do {
            // A rotation the store could not take last time is the live token: store it first.
            if let pending = unstored[key] {
                _ = try await store.recordRefresh(
                    name: key.name, companyID: key.companyID, previous: pending.previous, next: pending.next, expiresAt: pending.expiresAt,
                    at: clock.now())
                unstored[key] = nil
            }
            guard let row = try await store.refreshCredentials(named: key.name).first(where: { $0.companyID == key.companyID }) else {
                return needed(.notAuthorized)
            }
            let now = clock.now()
            if let problem = row.problem(at: now) {
                if row.problem == nil { await recordProblem(problem, key: key, token: row.refreshToken, store: store) }
                return needed(problem)
            }
            let interruptedBefore = row.refreshStartedAt != nil
            guard try await store.markRefreshStarted(name: key.name, companyID: key.companyID, token: row.refreshToken, at: now) else {
                return .failure(.unavailable("credential \(key.name) was replaced while it was being refreshed; trying again"))
            }
            // A refresh whose answer is cut off may have spent the token: it gets a minute even when the downstream's timeout is short.
            let result = await spend(
                row, key: key, client: resolved, store: store, http: http, tls: tls, timeoutMilliseconds: max(timeoutMilliseconds, 60_000),
                now: now, interruptedBefore: interruptedBefore)
            count(result, endpoint: resolved.tokenURL)
            return result
        } catch {
            return .failure(.unavailable("credential \(key.name): store: \(error)"))
        }
    }

    /// Sends the refresh with `row`'s token and stores what comes back
    /// (counted by the caller: one token request).
    func spend(
        _ row: RefreshCredential, key: CredentialKey, client resolved: ResolvedRefreshClient, store: any RefreshCredentialStore, http: CurlClient,
        tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int, now: Timestamp, interruptedBefore: Bool
    ) async -> Result<Cached, Problem> {
        let needed = { (problem: CredentialProblem) in Result<Cached, Problem>.failure(.authorizationNeeded(credential: key.name, problem: problem)) }
        do {
            let answer: TokenEndpointAnswer
            switch await OAuth2Tokens.postForm(
                [("grant_type", "refresh_token"), ("refresh_token", row.refreshToken)], to: resolved.tokenURL, clientID: resolved.clientID,
                secret: resolved.secret, method: resolved.method, client: http, tls: tls, timeoutMilliseconds: timeoutMilliseconds)
            {
            case .success(let got): answer = got
            // No answer: the endpoint may have rotated the token; the mark stays to say so.
            case .failure(let problem): return .failure(problem)
            }
            switch RefreshAnswer.interpret(status: answer.status, error: answer.errorCode, interruptedBefore: interruptedBefore) {
            case .issued:
                let next = answer.refreshToken ?? row.refreshToken
                let expiresAt =
                    answer.refreshTokenExpiry(issuedAt: now)
                    ?? (next != row.refreshToken ? resolved.lifetimeSeconds.map { now.adding(.seconds($0)) } : nil)
                // Stored first, whatever else the answer lacks: a rotated token is the only live one.
                let stored: Bool
                do {
                    stored = try await store.recordRefresh(
                        name: key.name, companyID: key.companyID, previous: row.refreshToken, next: next, expiresAt: expiresAt, at: now)
                } catch {
                    // Never use an access token whose refresh token is not stored: keep it to store first next time.
                    unstored[key] = UnstoredRotation(previous: row.refreshToken, next: next, expiresAt: expiresAt)
                    logger.error(
                        "ALERT oauth2: the rotated refresh token could not be stored; kept in memory and stored before the next send",
                        metadata: ["credential": "\(key.name)", "company": "\(key.companyID)", "error": "\(error)"])
                    return .failure(.unavailable("storing the rotated refresh token of credential \(key.name) failed"))
                }
                // An `oauth authorize` replaced the row meanwhile: its token is the one in force; this answer's is not stored, so not used.
                guard stored else { return .failure(.unavailable("credential \(key.name) was authorized again during the refresh; trying again")) }
                guard let cached = answer.accessToken(issuedAt: now) else {
                    return .failure(.unavailable("token endpoint answered HTTP \(answer.status) without an access_token"))
                }
                logger.debug("oauth2 refresh token rotated", metadata: ["credential": "\(key.name)", "company": "\(key.companyID)"])
                return .success(cached)
            case .tokenRefused(let problem):
                await recordProblem(problem, key: key, token: row.refreshToken, store: store)
                return needed(problem)
            case .clientRefused:
                try await store.clearRefreshMark(name: key.name, companyID: key.companyID, token: row.refreshToken)
                return .failure(.rejected("token endpoint refused the client: HTTP \(answer.status)\(answer.shownCode)"))
            case .unavailable:
                try await store.clearRefreshMark(name: key.name, companyID: key.companyID, token: row.refreshToken)
                return .failure(.unavailable("token endpoint: HTTP \(answer.status)\(answer.shownCode)"))
            }
        } catch {
            return .failure(.unavailable("credential \(key.name): store: \(error)"))
        }
    }

    /// Records a refused token once and alerts once (later jobs read the stored problem and send nothing).
    func recordProblem(_ problem: CredentialProblem, key: CredentialKey, token: String, store: any RefreshCredentialStore) async {
        let recorded = (try? await store.recordRefreshProblem(name: key.name, companyID: key.companyID, token: token, problem: problem)) ?? false
        guard recorded else { return }
        logger.error(
            "ALERT oauth2 credential needs authorizing again; its jobs are held",
            metadata: [
                "credential": "\(key.name)", "company": "\(key.companyID.isEmpty ? "(shared)" : key.companyID)",
                "reason": "\(HoldReason.authorizationNeeded(credential: key.name, problem: problem).description)",
            ])
    }
}
