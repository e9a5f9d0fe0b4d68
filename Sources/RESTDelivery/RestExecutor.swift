import Clocks
import CurlClient
import Domain
import Foundation
import JSON
import JobEngine
import Logging
import Mapping

/// Sends `rest` jobs to the downstream (payroll, HR, Jobylon's result card)
/// through libcurl.
///
/// The request is the one rendered when the job was created (same bytes on
/// every attempt), except for a mapping with `after`, rendered again at send
/// time with the other job's captured response; only `${VARIABLES}` are
/// injected here, at send time, so secrets never reach the store. The
/// mapping decides what counts as success, how long to retry and which
/// response fields to capture.
public struct RestExecutor: JobExecutor {
    /// Claims the jobs of `rest` mappings.
    public let kind = "rest"
    let registry: MappingRegistry
    let client: CurlClient
    let clock: any WallClock
    let tls: TLSSettings
    let store: (any RunningJobStore)?
    let sender: RestSender

    /// Outbound TLS: verification is on unless an operator turns it off explicitly.
    public struct TLSSettings: Sendable {
        /// A CA bundle file instead of the system's.
        public var caBundle: String?
        /// Turns off peer and host verification for every REST call; only by an
        /// operator's explicit choice.
        public var insecureSkipVerify: Bool
        /// An explicit outbound proxy; environment proxies are never used.
        public var proxy: String?

        /// By default: system CAs, verification on, no proxy.
        public init(caBundle: String? = nil, insecureSkipVerify: Bool = false, proxy: String? = nil) {
            self.caBundle = caBundle
            self.insecureSkipVerify = insecureSkipVerify
            self.proxy = proxy
        }
    }

    /// Variables come from the registry's current set (replaced with the
    /// mappings on SIGHUP), never from disk per send.
    /// With `store`, an `after` job's send-time request replaces its stored
    /// one before it is sent (what `jobs show` prints is what went out).
    /// `tokens` caches OAuth2 access tokens (share one with the flow executor).
    public init(
        registry: MappingRegistry, client: CurlClient, clock: any WallClock, tls: TLSSettings = TLSSettings(), store: (any RunningJobStore)? = nil,
        tokens: OAuth2Tokens = OAuth2Tokens(), downstreams: Downstreams = Downstreams()
    ) {
        self.sender = RestSender(client: client, clock: clock, tls: tls, tokens: tokens, downstreams: downstreams)
        self.store = store
        self.registry = registry
        self.client = client
        self.clock = clock
        self.tls = tls
    }

    /// The mapping's `retry`: backoff under `max_delay`, exactly `max_attempts`
    /// attempts, none later than `give_up_after` after the first.
    public func retryRules(for job: ClaimedJob) -> RetryRules {
        guard let mapping = registry.current.mapping(named: job.mapping), case .rest(let rest) = mapping.target else { return .standard }
        return RetryRules(settings: rest.retry)
    }

    /// One attempt. A status in the mapping's `success` list succeeds; 408, 425,
    /// 429 and 5XX are transient (honouring `Retry-After`), as is any network
    /// failure; any other status is permanent. Missing `${VARIABLES}` hold the
    /// job. Only the status is logged here, never the URL; an error body goes
    /// into the reason as a pattern-redacted excerpt.
    public func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome {
        let mappings = registry.current
        guard let mapping = mappings.mapping(named: job.mapping), case .rest(let rest) = mapping.target else {
            return .held(.mappingNotLoaded(mapping: job.mapping))
        }
        guard var payload = try? JSONParser.parse(job.payload, options: .strict) else {
            return .permanent(reason: "stored request is not valid JSON")
        }
        if mapping.after != nil {
            // Rendered again now, with the other job's captured response in scope.
            switch renderAfter(job, mapping: mapping) {
            case .success(let rendered):
                if rendered != payload, let store {
                    // Under the lease: a runner that lost it sends nothing.
                    guard
                        (try? await store.recordSentRequest(
                            jobID: job.id, owner: job.leaseOwner, attempt: job.attempt, payload: rendered, now: clock.now())) == true
                    else { return .transient(reason: "the job's lease was lost before sending", retryAfter: nil) }
                }
                payload = rendered
            case .failure(let reason): return .permanent(reason: reason.text)
            }
        }
        let response: CurlResponse
        switch await sender.send(payload, rest: rest, variables: mappings.variables, companyID: job.companyID) {
        case .success(let answer): response = answer
        case .failure(.postponed(let until, let reason)): return .postponed(until: until, reason: reason)
        case .failure(.held(let reason)): return .held(reason)
        case .failure(.permanent(let message)): return .permanent(reason: message)
        // The runner logs the outcome with the mapping and the redacted reason.
        case .failure(.transient(let message)): return .transient(reason: message, retryAfter: nil)
        }
        logger.info("rest response", metadata: ["status": "\(response.status)"])
        // The answer's text may quote what was sent (an IBAN, a name): the
        // runner redacts it by value and pattern before it is stored or logged.
        // Only a failure's body becomes a reason (a success's is never read as text).
        let answer = RestTarget.responseValue(status: response.status, headers: response.headers, body: response.body)
        let (outcome, rule) = DownstreamAnswers.rest(answer, status: response.status, target: rest)
        let because = rule.map { " (outcomes: \($0))" } ?? ""
        switch outcome {
        case .success, .alreadyDone, .finish:
            // Only a success's captures are read (never its text).
            return .succeeded(capture: rest.capture.isEmpty ? nil : .object(rest.captures(from: answer)))
        case .retry:
            let after = response.header("Retry-After").flatMap { RetryAfter.delay($0, now: clock.now()) }
            return .transient(reason: "HTTP \(response.status)\(because): \(RestRequestBuilder.excerpt(response.body))", retryAfter: after)
        case .fail:
            return .permanent(reason: "HTTP \(response.status)\(because): \(RestRequestBuilder.excerpt(response.body))")
        }
    }

    /// The event a job was planned for, from its stored body (`nil` once retention purged it).
    static func event(of job: ClaimedJob, now: Timestamp) -> MappingEvent? {
        guard let body = job.eventBody, let envelope = try? JSONParser.parse(body, options: .payload),
            let type = envelope["event_type"]?.stringValue, let action = envelope["action"]?.stringValue, let data = envelope["data"]
        else { return nil }
        let received = MappingClock.iso8601(milliseconds: job.createdAt?.milliseconds ?? now.milliseconds)
        return MappingEvent(type: type, action: action, data: data, receivedAt: received, id: job.eventID, entityKey: job.effectKey)
    }

    struct RenderFailure: Error { var text: String }

    func renderAfter(_ job: ClaimedJob, mapping: MappingFile) -> Result<JSONValue, RenderFailure> {
        guard let event = RestExecutor.event(of: job, now: clock.now()) else {
            return .failure(RenderFailure(text: "the event body is no longer stored (retention): cannot render \(mapping.name)"))
        }
        let response = job.afterCapture.flatMap { try? JSONParser.parse($0, options: .strict) } ?? .object(JSONObject())
        switch mapping.plan(event, now: MappingClock.iso8601(milliseconds: clock.now().milliseconds), extra: ["response": response]) {
        case .planned(let jobs):
            guard let rendered = jobs.first(where: { $0.item == job.item }) ?? jobs.first else {
                return .failure(RenderFailure(text: "\(mapping.name) rendered nothing"))
            }
            return .success(rendered.payload)
        case .noMatch(let reason): return .failure(RenderFailure(text: "\(mapping.name) no longer matches: \(reason)"))
        case .failed(let message): return .failure(RenderFailure(text: message))
        }
    }
}

/// Turns a stored `{method, url, headers, query, body, idempotency_key}` into a libcurl request.
public enum RestRequestBuilder {
    /// Why a stored request cannot be sent: missing variables hold the job until
    /// the operator sets them; anything else is permanent.
    public enum Problem: Error, Equatable {
        case missingVariables([String])
        case invalid(String)
    }

    /// Injects the template's `${VARIABLES}` into the URL, query, headers, body
    /// and auth (never placeholders that came from event data: `StoredText`),
    /// percent-encodes the query, adds the idempotency header unless the
    /// request sets it, and caps the answer at 1 MiB; `timeoutMilliseconds`
    /// bounds the whole exchange, 10 s of it for connecting.
    /// `accessToken` is the OAuth2 token `RestSender` obtained for an
    /// `oauth2` auth (required then, ignored otherwise).
    public static func build(
        _ payload: JSONValue, rest: RestTarget, variables: VariableSource, timeoutMilliseconds: Int, accessToken: String? = nil
    ) -> Result<CurlRequest, Problem> {
        var missing: [String] = []
        // Stored request text: only the template's own placeholders are filled (`StoredText`).
        func resolve(_ text: String) -> String { variables.fill(text, mask: false, missing: &missing) }
        // Credentials are mapping text, never rendered: placeholders as written.
        func credential(_ text: String) -> String { variables.credential(text, missing: &missing) }
        guard let method = payload["method"]?.stringValue, let rawURL = payload["url"]?.stringValue else {
            return .failure(.invalid("stored request lacks method or url"))
        }
        var url = resolve(rawURL)
        let lower = url.lowercased()
        if missing.isEmpty, !(lower.hasPrefix("https://") || lower.hasPrefix("http://")) {
            return .failure(.invalid("url must be http or https after variables are injected"))
        }
        var query: [String] = []
        for member in payload["query"]?.objectValue ?? JSONObject() {
            // A key is mapping text too: `$$` in it is one `$` when sent (OData's `$filter`).
            query.append(percentEncode(resolve(member.key)) + "=" + percentEncode(resolve(member.value.stringValue ?? "")))
        }
        if !query.isEmpty { url += (url.contains("?") ? "&" : "?") + query.joined(separator: "&") }
        var headers: [(name: String, value: String)] = []
        for member in payload["headers"]?.objectValue ?? JSONObject() {
            headers.append((member.key, resolve(member.value.stringValue ?? "")))
        }
        switch rest.auth {
        case .bearer(let token)?:
            headers.append(("Authorization", "Bearer " + credential(token)))
        case .basic(let user, let password)?:
            let credentials = Data((credential(user) + ":" + credential(password)).utf8).base64EncodedString()
            headers.append(("Authorization", "Basic " + credentials))
        case .oauth2ClientCredentials?, .oauth2RefreshToken?:
            guard let accessToken else { return .failure(.invalid("no OAuth2 access token was obtained for this request")) }
            headers.append(("Authorization", "Bearer " + accessToken))
        case nil:
            break
        }
        if let key = payload["idempotency_key"]?.stringValue,
            !headers.contains(where: { $0.name.lowercased() == rest.idempotencyHeader.lowercased() })
        {
            headers.append((rest.idempotencyHeader, resolve(key)))
        }
        var body: [UInt8]? = nil
        if let value = payload["body"], !value.isNull {
            body = JSONWriter.bytes(variables.fill(value, mask: false, missing: &missing))
            if !headers.contains(where: { $0.name.lowercased() == "content-type" }) { headers.append(("Content-Type", "application/json")) }
        }
        guard missing.isEmpty else { return .failure(.missingVariables(missing)) }
        return .success(
            CurlRequest(
                method: method, url: url, headers: headers, body: body,
                connectTimeoutMilliseconds: 10_000, totalTimeoutMilliseconds: timeoutMilliseconds,
                maxResponseBytes: 1 << 20))
    }

    /// RFC 3986 unreserved characters kept, every other byte `%XX`: form
    /// fields and query values as every token endpoint reads them.
    public static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    /// The start of an error body for the operator, on one line, with
    /// everything that looks like personal data or a secret masked by pattern
    /// (the runner also masks the values the job sent).
    public static func excerpt(_ body: [UInt8]) -> String {
        // Redacted before it is cut, so a value split at the cut cannot escape the patterns.
        let text = String(decoding: body.prefix(4096), as: UTF8.self).map { $0.isNewline ? " " : String($0) }.joined()
        let redacted = Redactor.redactPatterns(text)
        return redacted.count > 300 || body.count > 4096 ? String(redacted.prefix(300)) + "…" : redacted
    }
}
