import Clocks
import CurlClient
import Domain
import JSON
import Mapping

/// Sends one stored request of a `rest` target or flow step: variables and
/// credentials injected (an OAuth2 access token fetched or reused), TLS as
/// configured, and one resend with a fresh token when the downstream answers
/// 401 to a token it had accepted before. Shared by the REST and flow
/// executors and by `try`.
public struct RestSender: Sendable {
    let client: CurlClient
    let clock: any WallClock
    let tls: RestExecutor.TLSSettings
    let tokens: OAuth2Tokens
    let downstreams: Downstreams

    /// Why a request was not sent, or got no answer.
    public enum Problem: Error, Sendable {
        /// Waits for an operator (a missing variable, refused client credentials).
        case held(HoldReason)
        /// Can never be sent as it is.
        case permanent(String)
        /// Worth another attempt (network, a token endpoint that is down).
        case transient(String)
        /// Not sent: the downstream is paused (429, open breaker, rate
        /// limit) until `until`; the attempt does not count.
        case postponed(until: Timestamp, reason: String)
    }

    /// Waits this long at most for a limit inside the attempt (pacing a rate
    /// limit); a longer wait postpones the job instead of holding a runner slot.
    static let longestInlineWait: Duration = .seconds(2)

    /// `tokens` is shared by everything that sends to the same downstreams.
    public init(
        client: CurlClient, clock: any WallClock, tls: RestExecutor.TLSSettings, tokens: OAuth2Tokens, downstreams: Downstreams = Downstreams()
    ) {
        self.downstreams = downstreams
        self.client = client
        self.clock = clock
        self.tls = tls
        self.tokens = tokens
    }

    /// Sends `payload` (`{method, url, headers, query, body, idempotency_key}`)
    /// for `rest`, within the downstream's limits (`companyID` for limits per
    /// company), with `variables` scoped to the company: per-company
    /// credentials (`VariableSource`) come from that company's folder only, and
    /// OAuth2 tokens are cached per resolved client, so per company too.
    public func send(_ payload: JSONValue, rest: RestTarget, variables shared: VariableSource, companyID: String? = nil) async -> Result<
        CurlResponse, Problem
    > {
        let variables = shared.scopedToCompany(companyID)
        func missing(_ names: [String]) -> Problem { .held(.missingVariables(names.map(variables.describeMissing))) }
        var retriedWithFreshToken = false
        while true {
            var accessToken: String?
            let obtained: Result<String, OAuth2Tokens.Problem>?
            let timeout = rest.timeoutSeconds * 1000
            switch rest.auth {
            case .oauth2ClientCredentials(let grant)?:
                obtained = await tokens.token(for: grant, variables: variables, client: client, clock: clock, tls: tls, timeoutMilliseconds: timeout)
            case .oauth2RefreshToken(let grant)?:
                obtained = await tokens.token(
                    for: grant, companyID: companyID, variables: variables, client: client, clock: clock, tls: tls, timeoutMilliseconds: timeout)
            case .bearer?, .basic?, nil:
                obtained = nil
            }
            switch obtained {
            case .success(let token)?: accessToken = token
            case .failure(.missingVariables(let names))?: return .failure(missing(names))
            case .failure(.unavailable(let reason))?: return .failure(.transient(reason))
            case .failure(.rejected(let reason))?:
                return .failure(.held(.configuration("\(reason): fix the client id, secret or scope, then reload (SIGHUP) or `jobs retry`")))
            case .failure(.authorizationNeeded(let credential, let problem))?:
                return .failure(.held(.authorizationNeeded(credential: credential, problem: problem)))
            case nil: break
            }
            var request: CurlRequest
            switch RestRequestBuilder.build(
                payload, rest: rest, variables: variables, timeoutMilliseconds: rest.timeoutSeconds * 1000, accessToken: accessToken)
            {
            case .success(let built):
                request = built
                request.caBundle = tls.caBundle
                request.verifyPeer = !tls.insecureSkipVerify
                request.proxy = tls.proxy
            case .failure(.missingVariables(let names)): return .failure(missing(names))
            case .failure(.invalid(let message)): return .failure(.permanent(message))
            }
            let key = Downstreams.key(url: request.url, limits: rest.limits, companyID: companyID)
            let rules = Downstreams.rules(rest.limits)
            while case .wait(let until, let reason) = await downstreams.admit(
                key, rules: rules, now: clock.now(), inlineUpTo: RestSender.longestInlineWait)
            {
                let now = clock.now()
                guard until.milliseconds - now.milliseconds <= RestSender.longestInlineWait.milliseconds else {
                    return .failure(.postponed(until: until, reason: reason))
                }
                try? await clock.sleep(until: until)
            }
            let response: CurlResponse
            let started = ContinuousClock.now
            do {
                response = try await client.perform(request)
            } catch {
                await downstreams.finished(key, .failed, rules: rules, now: clock.now(), duration: ContinuousClock.now - started)
                return .failure(.transient("network: \(error)"))
            }
            await downstreams.finished(
                key, RestSender.gateResult(response, now: clock.now()), rules: rules, now: clock.now(), duration: ContinuousClock.now - started)
            // A token the endpoint issued may be revoked early: one fresh try, never a loop.
            if response.status == 401, !retriedWithFreshToken {
                switch rest.auth {
                case .oauth2ClientCredentials(let grant)?: await tokens.invalidate(grant, variables: variables)
                case .oauth2RefreshToken(let grant)?: await tokens.invalidate(grant, refused: accessToken)
                case .bearer?, .basic?, nil: return .success(response)
                }
                retriedWithFreshToken = true
                continue
            }
            return .success(response)
        }
    }

    /// What an answer means for the downstream's gate: a 429, or a 503 that
    /// says when to come back (`Retry-After`: how BambooHR throttles), pauses
    /// it; another retryable status counts towards the breaker; anything
    /// else shows it is up.
    static func gateResult(_ response: CurlResponse, now: Timestamp) -> DownstreamGate.Result {
        if response.status == 429 || (response.status == 503 && response.header("Retry-After") != nil) {
            return .throttled(retryAfter: response.header("Retry-After").flatMap { RetryAfter.delay($0, now: now) })
        }
        return DownstreamAnswers.isRetryableStatus(response.status) ? .failed : .answered
    }
}
