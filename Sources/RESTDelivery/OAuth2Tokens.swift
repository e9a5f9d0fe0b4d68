import Clocks
import CurlClient
import Domain
import Foundation
import JSON
import Logging
import Mapping
import Metrics

/// Access tokens from OAuth2 token endpoints (client credentials, or a
/// stored refresh token), shared by every job that uses the same endpoint,
/// client and scope, or the same stored credential.
///
/// An access token lives in memory only: never stored, never logged, never
/// in a reason. It is reused until shortly before it expires; concurrent sends
/// that need a new one wait for one request to the endpoint (single flight);
/// a downstream's 401 drops it so the next send fetches a fresh one.
///
/// A refresh token (`RefreshCredentialStore`) is spent by each refresh at
/// endpoints that rotate it, so refreshes of one credential never overlap,
/// the new refresh token is committed before the access token that came with
/// it is used, and a refused one is recorded once (jobs are held, an ALERT is
/// logged) instead of being tried again by every job.
public actor OAuth2Tokens {
    /// Why no token could be had.
    public enum Problem: Error, Sendable, Equatable {
        /// A variable the grant needs is unset (the job is held until it is set).
        case missingVariables([String])
        /// The endpoint is down or busy: try again later.
        case unavailable(String)
        /// The endpoint refused the client (wrong id or secret, unknown scope):
        /// an operator must fix the configuration; retrying does not help.
        case rejected(String)
        /// The stored refresh token cannot be used: an operator authorizes again.
        case authorizationNeeded(credential: String, problem: CredentialProblem)
    }

    /// One stored credential row: what refreshes are serialised on.
    struct CredentialKey: Hashable {
        var name: String
        var companyID: String
    }

    /// A rotated refresh token the store could not take yet: it is the only
    /// live one, so it is kept here and stored before anything else is sent.
    struct UnstoredRotation {
        var previous: String
        var next: String
        var expiresAt: Timestamp?
    }

    struct Key: Hashable {
        var tokenURL: String
        var clientID: String
        var secret: String
        var scope: String
        var audience: String
    }

    struct Cached {
        var token: String
        var renewAt: Timestamp
    }

    var cache: [Key: Cached] = [:]
    var inflight: [Key: Task<Result<Cached, Problem>, Never>] = [:]
    var refreshed: [CredentialKey: Cached] = [:]
    var refreshing: [CredentialKey: Task<Result<Cached, Problem>, Never>] = [:]
    var unstored: [CredentialKey: UnstoredRotation] = [:]
    let metricsFactory: (any MetricsFactory)?
    let credentials: (any RefreshCredentialStore)?
    let logger: Logger

    /// An empty cache; with `metricsFactory`, token requests are counted by
    /// result (`jobylon_bridge_oauth_token_requests_total`: issued,
    /// unavailable, rejected, refused). `credentials` keeps the refresh
    /// tokens of `refresh_token` grants (without it those grants hold their
    /// jobs as not authorized); `logger` gets the ALERT when one is refused.
    public init(
        metricsFactory: (any MetricsFactory)? = nil, credentials: (any RefreshCredentialStore)? = nil,
        logger: Logger = Logger(label: "jobylon-bridge.oauth2")
    ) {
        self.metricsFactory = metricsFactory
        self.credentials = credentials
        self.logger = logger
    }

    /// A valid access token for `grant`, from the cache or from its endpoint.
    public func token(
        for grant: OAuth2ClientCredentials, variables: VariableSource, client: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int
    ) async -> Result<String, Problem> {
        var missing: [String] = []
        func resolve(_ text: String) -> String { variables.credential(text, missing: &missing) }
        let key = Key(
            tokenURL: resolve(grant.tokenURL), clientID: resolve(grant.clientID), secret: resolve(grant.clientSecret),
            scope: grant.scope.map(resolve) ?? "", audience: grant.audience.map(resolve) ?? "")
        guard missing.isEmpty else { return .failure(.missingVariables(missing)) }
        if let cached = cache[key], cached.renewAt > clock.now() { return .success(cached.token) }
        if let running = inflight[key] { return await running.value.map(\.token) }
        let method = grant.clientAuthentication
        let task = Task {
            await OAuth2Tokens.request(key, method: method, client: client, clock: clock, tls: tls, timeoutMilliseconds: timeoutMilliseconds)
        }
        inflight[key] = task
        let result = await task.value
        inflight[key] = nil
        count(result, endpoint: key.tokenURL)
        if case .success(let fresh) = result {
            cache[key] = fresh
        }
        return result.map(\.token)
    }

    /// One token request in `jobylon_bridge_oauth_token_requests_total`, by
    /// result and by the token endpoint's origin (no path, no user part).
    func count(_ result: Result<Cached, Problem>, endpoint tokenURL: String) {
        guard let factory = metricsFactory else { return }
        let outcome: String
        switch result {
        case .success: outcome = "issued"
        case .failure(.unavailable): outcome = "unavailable"
        case .failure(.authorizationNeeded): outcome = "refused"
        case .failure: outcome = "rejected"
        }
        Counter(
            label: "jobylon_bridge_oauth_token_requests_total", dimensions: [("endpoint", Downstreams.origin(url: tokenURL)), ("result", outcome)],
            factory: factory
        ).increment()
    }

    /// Drops the cached token of `grant` (the downstream answered 401 with it).
    public func invalidate(_ grant: OAuth2ClientCredentials, variables: VariableSource) {
        let url = variables.substitute(grant.tokenURL, mask: false)
        let client = variables.substitute(grant.clientID, mask: false)
        cache = cache.filter { !($0.key.tokenURL == url && $0.key.clientID == client) }
    }

    /// One token request (RFC 6749 §4.4.2): a form POST, the client's
    /// credentials as basic auth or in the body.
    static func request(
        _ key: Key, method: OAuth2ClientCredentials.ClientAuthentication, client: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int
    ) async -> Result<Cached, Problem> {
        var form = [("grant_type", "client_credentials")]
        if !key.scope.isEmpty { form.append(("scope", key.scope)) }
        if !key.audience.isEmpty { form.append(("audience", key.audience)) }
        let started = clock.now()
        let answer: TokenEndpointAnswer
        switch await postForm(
            form, to: key.tokenURL, clientID: key.clientID, secret: key.secret, method: method, client: client, tls: tls,
            timeoutMilliseconds: timeoutMilliseconds)
        {
        case .success(let got): answer = got
        case .failure(let problem): return .failure(problem)
        }
        switch answer.status {
        case 200..<300:
            guard let cached = answer.accessToken(issuedAt: started) else {
                return .failure(.rejected("token endpoint answered HTTP \(answer.status) without an access_token"))
            }
            return .success(cached)
        case 408, 425, 429, 500..<600:
            return .failure(.unavailable("token endpoint: HTTP \(answer.status)\(answer.shownCode)"))
        default:
            return .failure(.rejected("token endpoint refused the client credentials: HTTP \(answer.status)\(answer.shownCode)"))
        }
    }

    /// A token endpoint's answer, read as RFC 6749 §5 writes it.
    public struct TokenEndpointAnswer: Sendable {
        /// The HTTP status.
        public var status: Int
        /// The JSON body, if it was JSON.
        public var body: JSONValue?

        /// The RFC's short `error` code (`invalid_grant`), never its
        /// description (which may quote the client); a value that is not such a
        /// code (letters and `_`, at most 40) is not shown, since a careless
        /// endpoint might echo a token there.
        public var errorCode: String? {
            guard let code = body?["error"]?.stringValue else { return nil }
            let isCode = !code.isEmpty && code.count <= 40 && code.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0 == "_" }
            return isCode ? code : "(unrecognised error code)"
        }

        var shownCode: String { errorCode.map { " " + $0 } ?? "" }

        /// A new refresh token, if the endpoint sent one.
        public var refreshToken: String? { body?["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }

        /// When the refresh token expires, if the endpoint says (names used by
        /// Keycloak, Microsoft, Intuit and others; the RFC defines none).
        public func refreshTokenExpiry(issuedAt: Timestamp) -> Timestamp? {
            for name in ["refresh_expires_in", "refresh_token_expires_in", "x_refresh_token_expires_in"] {
                if let seconds = body?[name]?.numberValue?.int64Value, seconds > 0 { return issuedAt.adding(.seconds(seconds)) }
            }
            return nil
        }

        func accessToken(issuedAt started: Timestamp) -> Cached? {
            guard let token = body?["access_token"]?.stringValue, !token.isEmpty else { return nil }
            let lifetime = body?["expires_in"]?.numberValue?.int64Value ?? 300
            // Renewed a little early: a tenth of its life, at most a minute.
            let margin = min(max(lifetime / 10, 1), 60)
            return Cached(token: token, renewAt: started.adding(.seconds(max(lifetime - margin, 0))))
        }
    }

    /// POSTs `form` to a token endpoint with the client's credentials as
    /// basic auth or in the body: the one way every grant talks to it.
    public static func postForm(
        _ fields: [(String, String)], to tokenURL: String, clientID: String, secret: String,
        method: OAuth2ClientCredentials.ClientAuthentication, client: CurlClient, tls: RestExecutor.TLSSettings, timeoutMilliseconds: Int
    ) async -> Result<TokenEndpointAnswer, Problem> {
        let lower = tokenURL.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://") else {
            return .failure(.rejected("token_url must be http or https after variables are injected"))
        }
        var form = fields
        var headers: [(name: String, value: String)] = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        switch method {
        case .basic:
            // RFC 6749 §2.3.1: each part form-encoded before the base64.
            let pair = RestRequestBuilder.percentEncode(clientID) + ":" + RestRequestBuilder.percentEncode(secret)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        case .body:
            form.append(("client_id", clientID))
            form.append(("client_secret", secret))
        }
        let body = form.map { RestRequestBuilder.percentEncode($0.0) + "=" + RestRequestBuilder.percentEncode($0.1) }.joined(separator: "&")
        var request = CurlRequest(
            method: "POST", url: tokenURL, headers: headers, body: Array(body.utf8), connectTimeoutMilliseconds: 10_000,
            totalTimeoutMilliseconds: timeoutMilliseconds, maxResponseBytes: 1 << 16)
        request.caBundle = tls.caBundle
        request.verifyPeer = !tls.insecureSkipVerify
        request.proxy = tls.proxy
        do {
            let response = try await client.perform(request)
            return .success(TokenEndpointAnswer(status: response.status, body: try? JSONParser.parse(response.body, options: .payload)))
        } catch {
            return .failure(.unavailable("token endpoint: network: \(error)"))
        }
    }
}
