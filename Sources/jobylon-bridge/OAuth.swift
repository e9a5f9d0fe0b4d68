import ArgumentParser
import BridgeApp
import Clocks
import CurlClient
import Domain
import Foundation
import Mapping
import Synchronization

/// `jobylon-bridge oauth`: the stored refresh tokens of OAuth2
/// `refresh_token` grants (`OAuthAuthorization`).
struct OAuth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oauth",
        abstract: "Authorize OAuth2 refresh-token credentials and show their state (works while the daemon runs).",
        subcommands: [Authorize.self, Status.self])

    struct Authorize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Obtain a credential's first refresh token (authorization code) and store it; releases the jobs held for it.",
            discussion: """
                Either open the consent page yourself and paste the code from the redirect (--code, with the \
                same --redirect-uri as the consent used, if any), or let this command print the consent URL \
                and receive the redirect on a loopback port (--listen 127.0.0.1:PORT; the redirect URI \
                http://127.0.0.1:PORT/callback must be registered for the client, or set redirect_uri in the \
                mapping). No token is printed.
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The credential name (auth.oauth2.credential in a mapping).") var credential: String
        @Option(
            name: .long, help: ArgumentHelp("Authorize for this Jobylon company only (its own account at the downstream).", valueName: "company id"))
        var company: String?
        @Option(name: .long, help: ArgumentHelp("The authorization code from the redirect.", valueName: "code")) var code: String?
        @Option(name: .long, help: ArgumentHelp("With --code: the redirect URI the consent used.", valueName: "uri")) var redirectURI: String?
        @Option(name: .long, help: ArgumentHelp("Receive the redirect on this loopback address.", valueName: "127.0.0.1:port")) var listen: String?
        @Option(name: .long, help: ArgumentHelp("With --listen: how long to wait for the redirect.", valueName: "duration")) var timeout: String =
            "10m"
        @Option(name: .long, help: ArgumentHelp("Mappings directory (default: the configuration's).", valueName: "dir")) var mappings: String?

        func validate() throws {
            guard (code == nil) != (listen == nil) else { throw ValidationError("give --code CODE or --listen 127.0.0.1:PORT") }
            guard Durations.seconds(timeout) != nil else { throw ValidationError("--timeout takes a duration like 90s or 10m") }
        }

        func run() async throws {
            // Authorizing may come before the daemon's first start: the store is then created here, 0700.
            let configuration = try store.configuration()
            try refusing { () throws(OperatorFailure) in
                do throws(ConfigurationError) {
                    try DataDirectory.prepare(path: configuration.dataDir)
                } catch {
                    throw OperatorFailure(error.message)
                }
            }
            let session = try OperatorSession(configuration: configuration)
            defer { session.close() }
            let set = try refusing { () throws(OperatorFailure) in try session.mappings(directory: mappings) { print($0) } }
            let grant: OAuth2RefreshTokenGrant
            do {
                grant = try OAuthAuthorization.grant(named: credential, in: set)
            } catch {
                FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
                throw ExitCode(1)
            }
            let companyID = company ?? ""
            let tls = session.downstreamTLS
            let variables = set.variables.scopedToCompany(company)
            do throws(any Error) {
                let authorizationCode: String
                var redirect = redirectURI ?? grant.redirectURI
                if let code {
                    authorizationCode = code
                } else {
                    let (host, port) = try Self.address(listen ?? "")
                    let state = OAuthAuthorization.newState()
                    // Refused before listening when the grant cannot make a consent address.
                    _ = try OAuthAuthorization.consentURL(grant, variables: variables, redirectURI: nil, state: state)
                    let path = try OAuthAuthorization.loopbackRedirect(host: host, port: port, boundPort: nil, registered: grant.redirectURI).path
                    let seconds = Durations.seconds(timeout) ?? 600
                    let registered = grant.redirectURI
                    let announced = Mutex<String?>(nil)
                    authorizationCode = try await OAuthAuthorization.awaitRedirect(
                        host: host, port: port, path: path, state: state, timeout: .seconds(seconds)
                    ) { bound in
                        let uri =
                            (try? OAuthAuthorization.loopbackRedirect(host: host, port: port, boundPort: bound, registered: registered).uri) ?? ""
                        announced.withLock { $0 = uri }
                        do {
                            let url = try OAuthAuthorization.consentURL(grant, variables: variables, redirectURI: uri, state: state)
                            let text =
                                "Open this address in a browser, sign in and allow access:\n\n  \(url)\n\nwaiting for the redirect to \(uri) …\n"
                            FileHandle.standardOutput.write(Data(text.utf8))
                        } catch {
                            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                        }
                    }
                    redirect = announced.withLock { $0 }
                }
                let stored = try await CurlEngine.with { client in
                    try await OAuthAuthorization.exchange(
                        code: authorizationCode, redirectURI: redirect, grant: grant, companyID: companyID, variables: set.variables, client: client,
                        tls: tls, clock: SystemWallClock())
                }
                let before = try await session.refreshCredentials().filter { $0.name == credential }
                let released = try await session.storeAuthorized(stored)
                if !companyID.isEmpty, before.contains(where: { $0.companyID.isEmpty }), !before.contains(where: { !$0.companyID.isEmpty }) {
                    print(
                        "note: the shared credential \(credential) is no longer used: once one company has its own, every company needs its own "
                            + "(a company is never sent with another's or a shared grant); authorize each with --company")
                }
                let expiry = stored.expiresAt.map { " valid until \(Self.iso8601($0))" } ?? " (the endpoint gave no expiry)"
                print("stored the refresh token of credential \(credential)\(company.map { " for company \($0)" } ?? ""),\(expiry)")
                print("\(released) held job(s) released")
            } catch let failure as OAuthAuthorization.Failure {
                FileHandle.standardError.write(Data("error: \(failure.description)\n".utf8))
                throw ExitCode(1)
            }
        }

        static func address(_ text: String) throws(OAuthAuthorization.Failure) -> (String, Int) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
                throw OAuthAuthorization.Failure("--listen takes HOST:PORT, e.g. 127.0.0.1:8765")
            }
            return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
        }

        static func iso8601(_ time: Timestamp) -> String {
            MappingClock.iso8601(milliseconds: time.milliseconds)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stored credentials: company, last rotation, expiry, problem (never a token).")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let session = try store.session()
            defer { session.close() }
            let rows = try await session.refreshCredentials()
            if rows.isEmpty { print("no stored OAuth2 credentials") }
            let now = session.now
            for row in rows {
                let company = row.companyID.isEmpty ? "(shared)" : row.companyID
                let expiry = row.expiresAt.map { Authorize.iso8601($0) } ?? "unknown"
                let state: String
                if let problem = row.problem(at: now) {
                    state = "needs authorizing: \(problem.rawValue)"
                } else if row.refreshStartedAt != nil {
                    state = "refresh in flight or interrupted"
                } else if row.isDueForRenewal(at: now) {
                    state = "expires soon"
                } else {
                    state = "ok"
                }
                print("\(row.name)\t\(company)\trotated \(Authorize.iso8601(row.rotatedAt))\texpires \(expiry)\t\(state)")
            }
        }
    }
}
