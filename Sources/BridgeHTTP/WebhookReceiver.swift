import Clocks
import CompressNIO
import Domain
import Hummingbird
import JSON
import Logging
import Metrics
import NIOCore
import Synchronization

/// Settings of `POST /webhooks/jobylon`.
public struct WebhookReceiverConfiguration: Sendable {
    /// The route Jobylon posts to; it must match the webhook URL set up on Jobylon's side.
    public var path: String = "/webhooks/jobylon"
    /// Larger bodies get 413 before they are read (and after inflating gzip).
    public var maxBodyBytes: Int = 1 << 20
    /// When set, events of other companies are stored but parked (not routed).
    public var allowedCompanies: Set<String>?
    /// Seconds a 503 asks the sender to wait.
    public var retryAfterSeconds: Int = 10

    public init() {}
}

/// Turns an HTTP request into a durable inbox entry.
///
/// The contract with Jobylon: a 2XX only once the body is committed to disk;
/// 401 stores nothing; an authenticated body we cannot use is quarantined
/// whole and answered with a precise 400 (415 for an unsupported
/// `Content-Encoding`); a store that cannot commit is 503
/// with `Retry-After`, never a 2XX. Jobs are created after the commit from
/// the routing queue (`EventRoutingService`), so the answer waits for the
/// event's own row only.
public struct WebhookReceiver: Sendable {
    let configuration: WebhookReceiverConfiguration
    let tokens: WebhookTokens
    let store: any EventStore
    let clock: any WallClock
    let logger: Logger
    let metrics: ReceiverMetrics

    /// With no `tokens` every request is answered 401 and nothing is stored.
    public init(
        configuration: WebhookReceiverConfiguration,
        tokens: WebhookTokens,
        store: any EventStore,
        clock: any WallClock,
        logger: Logger,
        metricsFactory: any MetricsFactory
    ) {
        self.configuration = configuration
        self.tokens = tokens
        self.store = store
        self.clock = clock
        self.logger = logger
        self.metrics = ReceiverMetrics(factory: metricsFactory)
    }

    /// Adds `POST <path>`; each request is answered only after the store
    /// committed the event (or refused it).
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post(RouterPath(stringLiteral: configuration.path)) { request, _ -> Response in
            await self.receive(request)
        }
    }

    func receive(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        let response = await handle(request)
        metrics.latency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        return response
    }

    func handle(_ request: Request) async -> Response {
        guard tokens.acceptsAuthorization(request.headers[.authorization]) else {
            metrics.count(event: "-", outcome: "unauthorized")
            var response = WebhookReceiver.json(.unauthorized, ["error": "missing or invalid bearer token"])
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        if let lengthHeader = request.headers[.contentLength], let length = Int(lengthHeader), length > configuration.maxBodyBytes {
            metrics.count(event: "-", outcome: "too_large")
            return tooLarge()
        }
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            metrics.count(event: "-", outcome: "too_large")
            return tooLarge()
        }
        let receivedAt = clock.now()

        switch request.headers[.contentEncoding]?.lowercased() {
        case nil, "identity", "":
            break
        case "gzip", "x-gzip":
            do {
                buffer = try buffer.decompress(with: .gzip(), maxSize: configuration.maxBodyBytes)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                metrics.count(event: "-", outcome: "too_large")
                return tooLarge()
            } catch {
                return await quarantine(
                    Array(buffer.readableBytesView), receivedAt: receivedAt, status: .badRequest,
                    reason: "body is not valid gzip")
            }
        case let other?:
            let encoding = String(other.prefix(40))
            return await quarantine(
                Array(buffer.readableBytesView), receivedAt: receivedAt, status: .unsupportedMediaType,
                reason: "unsupported Content-Encoding '\(encoding)'; send identity or gzip")
        }

        let body = Array(buffer.readableBytesView)
        let envelope: WebhookEnvelope
        do {
            envelope = try WebhookEnvelope.read(body)
        } catch {
            return await quarantine(body, receivedAt: receivedAt, status: .badRequest, reason: error.description)
        }

        let disposition: EventDisposition
        if !envelope.kind.isDocumented {
            disposition = .unrouted
            logger.warning("unknown event type stored unrouted", metadata: ["event": "\(envelope.kind)"])
        } else if let allowed = configuration.allowedCompanies, !allowed.contains(envelope.companyID ?? "") {
            disposition = .parked
        } else {
            disposition = .routed
        }
        var company: CompanySnapshot?
        if envelope.kind == .companySignup, disposition != .parked, let data = (try? JSONParser.parse(body))?["data"] {
            company = CompanySnapshot(signupData: data)
        }

        let outcome = await store.ingest(
            IngestItem(
                body: body, receivedAt: receivedAt,
                content: .event(envelope, disposition: disposition, jobs: [], company: company), routeAfterCommit: disposition == .routed))
        let event = envelope.kind.isDocumented ? envelope.kind.description : "unknown"
        switch outcome {
        case .stored(let id, _):
            metrics.count(event: event, outcome: disposition == .routed ? "stored" : disposition.rawValue)
            return WebhookReceiver.json(.ok, ["status": .string("stored"), "id": .number(JSONNumber(id))])
        case .duplicate(let id):
            metrics.count(event: event, outcome: "duplicate")
            return WebhookReceiver.json(.ok, ["status": .string("duplicate"), "id": .number(JSONNumber(id))])
        case .quarantined(let id, _):
            // Not reachable for an envelope; answered as a quarantine for completeness.
            return WebhookReceiver.json(.badRequest, ["error": "quarantined", "quarantine_id": .number(JSONNumber(id))])
        case .unavailable(let reason):
            return unavailable(event: event, reason: reason)
        }
    }

    func quarantine(_ body: [UInt8], receivedAt: Timestamp, status: HTTPResponse.Status, reason: String) async -> Response {
        let outcome = await store.ingest(IngestItem(body: body, receivedAt: receivedAt, content: .quarantine(reason: reason)))
        switch outcome {
        case .quarantined(let id, _):
            metrics.count(event: "-", outcome: "quarantined")
            logger.warning("webhook quarantined", metadata: ["quarantine_id": "\(id)", "reason": "\(reason)"])
            return WebhookReceiver.json(status, ["error": .string(reason), "quarantine_id": .number(JSONNumber(id))])
        case .unavailable(let storeReason):
            return unavailable(event: "-", reason: storeReason)
        case .stored, .duplicate:
            return WebhookReceiver.json(status, ["error": .string(reason)])
        }
    }

    func unavailable(event: String, reason: String) -> Response {
        metrics.count(event: event, outcome: "unavailable")
        logger.error("webhook refused with 503: not stored", metadata: ["reason": "\(reason)"])
        var response = WebhookReceiver.json(.serviceUnavailable, ["error": "store unavailable, retry later"])
        response.headers[.retryAfter] = String(configuration.retryAfterSeconds)
        return response
    }

    func tooLarge() -> Response {
        WebhookReceiver.json(.contentTooLarge, ["error": .string("body larger than \(configuration.maxBodyBytes) bytes")])
    }

    static func json(_ status: HTTPResponse.Status, _ object: JSONObject) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(JSONWriter.bytes(.object(object)))
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Lets the receiver write its small JSON answers as literals; members keep
    /// the literal's order, a repeated key replaces the earlier one.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { JSONObject.Member(key: $0.0, value: $0.1) })
    }
}

struct ReceiverMetrics: Sendable {
    let factory: any MetricsFactory
    let latency: Metrics.Timer
    /// Counters by (event, outcome): a handful of pairs, looked up on every
    /// webhook, so each is made once instead of per request.
    private let counters = CounterCache()

    private final class CounterCache: Sendable {
        let byKey = Mutex<[CounterKey: Counter]>([:])
    }

    private struct CounterKey: Hashable {
        var event: String
        var outcome: String
    }

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.latency = Metrics.Timer(label: "jobylon_bridge_ingest_seconds", factory: factory)
    }

    func count(event: String, outcome: String) {
        let key = CounterKey(event: event, outcome: outcome)
        let counter = counters.byKey.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = Counter(label: "jobylon_bridge_webhooks_total", dimensions: [("event", event), ("outcome", outcome)], factory: factory)
            counters[key] = made
            return made
        }
        counter.increment()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
