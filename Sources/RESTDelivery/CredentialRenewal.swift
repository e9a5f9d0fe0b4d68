import Clocks
import CurlClient
import Domain
import Logging
import Mapping
import Metrics
import ServiceLifecycle

/// Keeps stored refresh tokens alive and says when one will not stay so.
///
/// A rotating refresh token (Fortnox: 45 days) gets a new lifetime only when
/// it is used, so weeks without a hire would let it lapse. Every hour this
/// service records each credential's remaining lifetime
/// (`jobylon_bridge_oauth_refresh_token_expiry_seconds`), refreshes one that
/// is within `RefreshCredential.renewalWindowMilliseconds` of its expiry
/// (the same serialised refresh as a job's, so it never races one), and logs
/// an ALERT, once a day per credential, for one still due afterwards (an
/// endpoint that does not extend it, or a refresh that keeps failing).
public struct CredentialRenewal: Service {
    let store: any RefreshCredentialStore
    let tokens: OAuth2Tokens
    let mappings: @Sendable () -> MappingSet
    let client: CurlClient
    let clock: any WallClock
    let tls: RestExecutor.TLSSettings
    let metricsFactory: any MetricsFactory
    let logger: Logger
    let interval: Duration

    /// `mappings` gives the mappings in force (the grants' endpoints and clients).
    public init(
        store: any RefreshCredentialStore, tokens: OAuth2Tokens, mappings: @escaping @Sendable () -> MappingSet, client: CurlClient,
        clock: any WallClock, tls: RestExecutor.TLSSettings, metricsFactory: any MetricsFactory, logger: Logger, interval: Duration = .seconds(3600)
    ) {
        self.store = store
        self.tokens = tokens
        self.mappings = mappings
        self.client = client
        self.clock = clock
        self.tls = tls
        self.metricsFactory = metricsFactory
        self.logger = logger
        self.interval = interval
    }

    /// One round at start-up, then every `interval`, until shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var reminders = Reminders()
            while !Task.isCancelled {
                await round(&reminders)
                try await clock.sleep(for: interval)
            }
        }
    }

    /// When each credential was last alerted on, so an alert repeats once a day.
    struct Reminders {
        var last: [String: Timestamp] = [:]
        var firstRound = true
    }

    /// Gauges every credential, renews the due ones, alerts on those still due
    /// or needing authorization: at start-up, then once a day (a refusal found
    /// by a job was alerted when it happened, so its first reminder is a day later).
    func round(_ reminders: inout Reminders) async {
        let rows: [RefreshCredential]
        do {
            rows = try await store.allRefreshCredentials()
        } catch {
            logger.warning("oauth2 credential check failed", metadata: ["error": "\(error)"])
            return
        }
        let set = mappings()
        let grants = Dictionary(set.mappings.flatMap(\.refreshTokenGrants).map { ($0.credential, $0) }, uniquingKeysWith: { first, _ in first })
        let firstRound = reminders.firstRound
        reminders.firstRound = false
        for var row in rows {
            let company = row.companyID.isEmpty ? "(shared)" : row.companyID
            if row.problem(at: clock.now()) == nil, row.isDueForRenewal(at: clock.now()), let grant = grants[row.name] {
                let outcome = await tokens.renew(
                    grant, companyID: row.companyID, variables: set.variables.scopedToCompany(row.companyID.isEmpty ? nil : row.companyID),
                    client: client, clock: clock, tls: tls)
                if case .failure(let problem) = outcome {
                    logger.warning(
                        "oauth2 refresh token renewal failed",
                        metadata: ["credential": "\(row.name)", "company": "\(company)", "problem": "\(problem)"])
                }
                if let fresh = try? await store.refreshCredentials(named: row.name).first(where: { $0.companyID == row.companyID }) { row = fresh }
            }
            let now = clock.now()
            let dimensions = [("credential", row.name), ("company", company)]
            if let expiresAt = row.expiresAt {
                Gauge(label: "jobylon_bridge_oauth_refresh_token_expiry_seconds", dimensions: dimensions, factory: metricsFactory)
                    .record(Double(expiresAt.milliseconds - now.milliseconds) / 1000)
            }
            let problem = row.problem(at: now)
            Gauge(label: "jobylon_bridge_oauth_credential_needs_authorizing", dimensions: dimensions, factory: metricsFactory)
                .record(problem == nil ? 0 : 1)
            let key = row.name + " " + row.companyID
            guard problem != nil || row.isDueForRenewal(at: now) else {
                reminders.last[key] = nil
                continue
            }
            let firstSeen = reminders.last[key] == nil
            if let last = reminders.last[key], now.milliseconds - last.milliseconds < 24 * 3600 * 1000 { continue }
            reminders.last[key] = now
            let fix = "jobylon-bridge oauth authorize \(row.name)\(row.companyID.isEmpty ? "" : " --company \(row.companyID)")"
            if let problem {
                // Found by a job since the last round: that job's ALERT said it; the reminder follows a day later.
                if firstSeen && !firstRound { continue }
                logger.error(
                    "ALERT oauth2 credential still waits to be authorized again; its jobs are held",
                    metadata: ["credential": "\(row.name)", "company": "\(company)", "problem": "\(problem.rawValue)", "fix": "\(fix)"])
            } else {
                let days = row.expiresAt.map { max(0, ($0.milliseconds - now.milliseconds) / 86_400_000) } ?? 0
                logger.error(
                    "ALERT oauth2 refresh token expires soon and could not be renewed",
                    metadata: ["credential": "\(row.name)", "company": "\(company)", "expires_in": "\(days) day(s)", "fix": "\(fix)"])
            }
        }
    }
}

extension OAuth2Tokens {
    /// Refreshes the stored credential of `grant` for `companyID` (its row's
    /// company; empty for the shared one) even though its access token may
    /// still be valid: the renewal of a refresh token near its expiry.
    public func renew(
        _ grant: OAuth2RefreshTokenGrant, companyID: String, variables: VariableSource, client: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings
    ) async -> Result<Void, Problem> {
        var missing: [String] = []
        let resolved = ResolvedRefreshClient(grant, variables: variables, missing: &missing)
        guard missing.isEmpty else { return .failure(.missingVariables(missing)) }
        return await accessToken(
            CredentialKey(name: grant.credential, companyID: companyID), client: resolved, http: client, clock: clock, tls: tls,
            timeoutMilliseconds: 30_000, force: true
        ).map { _ in () }
    }
}
