import Clocks
import CurlClient
import Domain
import Foundation
import Hummingbird
import Logging
import Mapping
import RESTDelivery
import ServiceLifecycle

/// What `jobylon-bridge oauth authorize` does: the authorization code flow
/// (RFC 6749 §4.1) that gives a refresh-token grant its first refresh token.
/// The operator consents in a browser; the code comes back pasted or to a
/// loopback listener (RFC 8252 §7.3); it is exchanged at the token endpoint
/// and the refresh token stored, which releases the jobs held for it. No
/// token is ever printed.
public enum OAuthAuthorization {
    /// Why an authorization could not be done, worded for the operator.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong, without any token or secret.
        public var description: String

        /// A failure worded for the operator.
        public init(_ description: String) { self.description = description }
    }

    /// The grant named `credential` in `set` (a loaded set has one client
    /// per credential name: `MappingSet.crossCheck`).
    public static func grant(named credential: String, in set: MappingSet) throws(Failure) -> OAuth2RefreshTokenGrant {
        let grants = set.mappings.flatMap(\.refreshTokenGrants)
        guard let grant = grants.first(where: { $0.credential == credential }) else {
            let known = Set(grants.map(\.credential)).sorted()
            throw Failure(
                "no mapping uses an oauth2 refresh_token grant with credential \"\(credential)\""
                    + (known.isEmpty ? "" : " (credentials in the mappings: \(known.joined(separator: ", ")))"))
        }
        return grant
    }

    /// The address the operator opens to consent: the grant's
    /// `authorization_url` with the client id, redirect URI, scope and `state`.
    public static func consentURL(_ grant: OAuth2RefreshTokenGrant, variables: VariableSource, redirectURI: String?, state: String)
        throws(Failure) -> String
    {
        guard let base = grant.authorizationURL else {
            throw Failure(
                "the grant of credential \"\(grant.credential)\" has no authorization_url; set it, or open the consent page yourself and pass --code")
        }
        var missing: [String] = []
        let url = variables.credential(base, missing: &missing)
        let clientID = variables.credential(grant.clientID, missing: &missing)
        let scope = grant.scope.map { variables.credential($0, missing: &missing) }
        guard missing.isEmpty else { throw Failure("missing variable(s) \(missing.joined(separator: ", "))") }
        var query = [("response_type", "code"), ("client_id", clientID), ("state", state)]
        if let redirectURI { query.append(("redirect_uri", redirectURI)) }
        if let scope, !scope.isEmpty { query.append(("scope", scope)) }
        let encoded = query.map { RestRequestBuilder.percentEncode($0.0) + "=" + RestRequestBuilder.percentEncode($0.1) }.joined(separator: "&")
        return url + (url.contains("?") ? "&" : "?") + encoded
    }

    /// Exchanges `code` at the token endpoint (RFC 6749 §4.1.3) and returns
    /// the credential to store for `companyID` (empty: shared).
    public static func exchange(
        code: String, redirectURI: String?, grant: OAuth2RefreshTokenGrant, companyID: String, variables: VariableSource, client: CurlClient,
        tls: RestExecutor.TLSSettings, clock: any WallClock
    ) async throws(Failure) -> RefreshCredential {
        let scoped = variables.scopedToCompany(companyID.isEmpty ? nil : companyID)
        var missing: [String] = []
        let tokenURL = scoped.credential(grant.tokenURL, missing: &missing)
        let clientID = scoped.credential(grant.clientID, missing: &missing)
        let secret = scoped.credential(grant.clientSecret, missing: &missing)
        guard missing.isEmpty else { throw Failure("missing variable(s) \(missing.map(scoped.describeMissing).joined(separator: ", "))") }
        var form = [("grant_type", "authorization_code"), ("code", code)]
        if let redirectURI { form.append(("redirect_uri", redirectURI)) }
        let now = clock.now()
        let answer: OAuth2Tokens.TokenEndpointAnswer
        switch await OAuth2Tokens.postForm(
            form, to: tokenURL, clientID: clientID, secret: secret, method: grant.clientAuthentication, client: client, tls: tls,
            timeoutMilliseconds: 30_000)
        {
        case .success(let got): answer = got
        case .failure(let problem): throw Failure("the token endpoint could not be reached: \(problem)")
        }
        guard (200..<300).contains(answer.status) else {
            throw Failure(
                "the token endpoint refused the code: HTTP \(answer.status)\(answer.errorCode.map { " " + $0 } ?? "")"
                    + " (a code is valid once and for minutes; the redirect URI must match the one of the consent)")
        }
        guard let refreshToken = answer.refreshToken else {
            throw Failure("the token endpoint answered without a refresh_token (does the client need an offline_access scope?)")
        }
        let expiresAt = answer.refreshTokenExpiry(issuedAt: now) ?? grant.refreshTokenLifetimeSeconds.map { now.adding(.seconds($0)) }
        return RefreshCredential(name: grant.credential, companyID: companyID, refreshToken: refreshToken, expiresAt: expiresAt, rotatedAt: now)
    }

    /// Where the browser is sent back to for `--listen HOST:PORT`: the
    /// mapping's `redirect_uri` when it has one (then it must be a loopback
    /// address on that very port, or the redirect would never arrive), else
    /// `http://HOST:PORT/callback` with the port actually bound (RFC 8252
    /// §7.3: an IP literal, not `localhost`). `boundPort` is nil before binding.
    public static func loopbackRedirect(host: String, port: Int, boundPort: Int?, registered: String?) throws(Failure) -> (uri: String, path: String)
    {
        guard let registered else {
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return ("http://\(shownHost):\(boundPort ?? port)/callback", "/callback")
        }
        guard let parts = URLComponents(string: registered), parts.scheme == "http", let registeredHost = parts.host,
            ["127.0.0.1", "::1", "[::1]"].contains(registeredHost)
        else {
            throw Failure(
                "the mapping's redirect_uri is not an http loopback address, so --listen cannot receive it; open the consent page yourself and pass --code"
            )
        }
        guard let registeredPort = parts.port, registeredPort == port else {
            throw Failure(
                "the mapping's redirect_uri is \(registered): listen on its port (--listen \(host.contains(":") ? "[\(host)]" : host):\(parts.port.map(String.init) ?? "PORT"))"
            )
        }
        return (registered, parts.path.isEmpty ? "/" : parts.path)
    }

    /// A random `state` (RFC 6749 §10.12): the redirect is accepted only with it.
    public static func newState() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Serves `host:port` on loopback until the consent's redirect arrives
    /// with `state`, answers the browser, and returns the code. `ready` gets
    /// the bound port before anything is awaited (port 0 picks one).
    public static func awaitRedirect(
        host: String, port: Int, path: String, state: String, timeout: Duration, ready: @escaping @Sendable (Int) -> Void
    ) async throws(Failure) -> String {
        guard host == "127.0.0.1" || host == "::1" else {
            throw Failure("--listen takes a loopback address (127.0.0.1:PORT or [::1]:PORT): the code must not be sent over the network")
        }
        let (codes, delivered) = AsyncStream.makeStream(of: Result<String, Failure>.self)
        let router = Router()
        router.get(RouterPath(path.isEmpty ? "/" : path)) { request, _ -> Response in
            let query = request.uri.queryParameters
            // Anything without this authorization's state (a stray request, a prefetch, an old tab) is refused and the wait goes on.
            guard query["state"].map(String.init) == state else {
                return Response(
                    status: .badRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "Not this authorization (state does not match); the command keeps waiting.\n")))
            }
            let answer: Result<String, Failure>
            if let error = query["error"] {
                let code = error.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0 == "_" } ? String(error.prefix(40)) : "(unrecognised)"
                answer = .failure(Failure("the consent was refused: \(code)"))
            } else if let code = query["code"], !code.isEmpty {
                answer = .success(String(code))
            } else {
                answer = .failure(Failure("the redirect carried no code"))
            }
            delivered.yield(answer)
            let text =
                (try? answer.get()) != nil
                ? "Authorized: jobylon-bridge has the code; you can close this page.\n" : "Not authorized; see the terminal.\n"
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        var quiet = Logger(label: "jobylon-bridge.oauth-redirect")
        quiet.logLevel = .error
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in ready(channel.localAddress?.port ?? port) }, logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [app], logger: quiet))
        do {
            return try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    do {
                        try await group.run()
                    } catch {
                        // A port that cannot be bound ends the wait at once, with why.
                        delivered.yield(.failure(Failure("cannot listen on \(host):\(port): \(error)")))
                    }
                }
                tasks.addTask {
                    try await Task.sleep(for: timeout)
                    delivered.yield(.failure(Failure("no redirect within \(timeout); run the command again")))
                }
                var results = codes.makeAsyncIterator()
                let result = await results.next() ?? .failure(Failure("the listener stopped"))
                // The handler hands the code over before its answer is written: let the browser's page
                // go out before the listener stops (a shutdown at once can cut that connection).
                try? await Task.sleep(for: .milliseconds(500))
                // A graceful stop of the listener first (cancelling it mid-run makes the server log errors),
                // then the timeout's sleep, the one child left, is cancelled.
                await group.triggerGracefulShutdown()
                _ = try? await tasks.next()
                tasks.cancelAll()
                try? await tasks.waitForAll()
                return try result.get()
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure("the loopback listener on \(host):\(port) failed: \(error)")
        }
    }
}
