import Clocks
import CurlClient
import Foundation
import JSON
import Mapping
import Metrics

/// Access tokens from OAuth2 token endpoints (client credentials), shared by
/// every job that uses the same endpoint, client and scope.
///
/// A token lives in memory only: never stored, never logged, never in a
/// reason. It is reused until shortly before it expires; concurrent sends
/// that need a new one wait for one request to the endpoint (single flight);
/// a downstream's 401 drops it so the next send fetches a fresh one.
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
    let metricsFactory: (any MetricsFactory)?

    /// An empty cache; with `metricsFactory`, token requests are counted by
    /// result (`jobylon_bridge_oauth_token_requests_total`: issued,
    /// unavailable, rejected).
    public init(metricsFactory: (any MetricsFactory)? = nil) {
        self.metricsFactory = metricsFactory
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
        if let factory = metricsFactory {
            let outcome: String
            switch result {
            case .success: outcome = "issued"
            case .failure(.unavailable): outcome = "unavailable"
            case .failure: outcome = "rejected"
            }
            Counter(label: "jobylon_bridge_oauth_token_requests_total", dimensions: [("result", outcome)], factory: factory).increment()
        }
        if case .success(let fresh) = result {
            cache[key] = fresh
        }
        return result.map(\.token)
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
        let lower = key.tokenURL.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://") else {
            return .failure(.rejected("token_url must be http or https after variables are injected"))
        }
        var form = [("grant_type", "client_credentials")]
        if !key.scope.isEmpty { form.append(("scope", key.scope)) }
        if !key.audience.isEmpty { form.append(("audience", key.audience)) }
        var headers: [(name: String, value: String)] = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        switch method {
        case .basic:
            // RFC 6749 §2.3.1: each part form-encoded before the base64.
            let pair = RestRequestBuilder.percentEncode(key.clientID) + ":" + RestRequestBuilder.percentEncode(key.secret)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        case .body:
            form.append(("client_id", key.clientID))
            form.append(("client_secret", key.secret))
        }
        let body = form.map { RestRequestBuilder.percentEncode($0.0) + "=" + RestRequestBuilder.percentEncode($0.1) }.joined(separator: "&")
        var request = CurlRequest(
            method: "POST", url: key.tokenURL, headers: headers, body: Array(body.utf8), connectTimeoutMilliseconds: 10_000,
            totalTimeoutMilliseconds: timeoutMilliseconds, maxResponseBytes: 1 << 16)
        request.caBundle = tls.caBundle
        request.verifyPeer = !tls.insecureSkipVerify
        request.proxy = tls.proxy
        let started = clock.now()
        let response: CurlResponse
        do {
            response = try await client.perform(request)
        } catch {
            return .failure(.unavailable("token endpoint: network: \(error)"))
        }
        let answer = try? JSONParser.parse(response.body, options: .payload)
        // Only the RFC's short error code is shown, never the description (it may quote the client).
        let code = answer?["error"]?.stringValue.map { " \(String($0.prefix(40)))" } ?? ""
        switch response.status {
        case 200..<300:
            guard let token = answer?["access_token"]?.stringValue, !token.isEmpty else {
                return .failure(.rejected("token endpoint answered HTTP \(response.status) without an access_token"))
            }
            let lifetime = answer?["expires_in"]?.numberValue?.int64Value ?? 300
            // Renewed a little early: a tenth of its life, at most a minute.
            let margin = min(max(lifetime / 10, 1), 60)
            return .success(Cached(token: token, renewAt: started.adding(.seconds(max(lifetime - margin, 0)))))
        case 408, 425, 429, 500..<600:
            return .failure(.unavailable("token endpoint: HTTP \(response.status)\(code)"))
        default:
            return .failure(.rejected("token endpoint refused the client credentials: HTTP \(response.status)\(code)"))
        }
    }
}
