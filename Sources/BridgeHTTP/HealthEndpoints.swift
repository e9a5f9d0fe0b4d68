import Hummingbird
import JSON
import Logging

/// Answers "can this process durably accept a webhook right now?".
///
/// Readiness is deliberately narrow: a held or broken mapping never makes a
/// replica unready, or a load balancer would drop every replica and Jobylon's
/// retries would run out.
public protocol ReadinessCheck: Sendable {
    func check() async -> ReadinessReport
}

/// One probe's verdict: `/readyz` answers 200 or 503 by `ready` and lists `details`.
public struct ReadinessReport: Sendable {
    /// Whether a webhook arriving now could be committed durably.
    public var ready: Bool
    /// Short, non-personal facts for the operator (`store: ok`, …).
    public var details: [String: String]

    /// Keep `details` free of personal data: `/readyz` shows them to anyone who asks.
    public init(ready: Bool, details: [String: String]) {
        self.ready = ready
        self.details = details
    }
}

/// `/healthz` (the process answers) and `/readyz` (it can durably accept).
public struct HealthEndpoints: Sendable {
    let readiness: any ReadinessCheck

    /// `readiness` runs on every `/readyz` request, so it must stay cheap.
    public init(readiness: any ReadinessCheck) {
        self.readiness = readiness
    }

    /// `/healthz` answers without touching the store; `/readyz` runs the
    /// readiness check and answers 503 with its details when it fails.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/healthz") { _, _ -> Response in
            HealthEndpoints.json(status: .ok, ["status": "alive"])
        }
        router.get("/readyz") { _, _ -> Response in
            let report = await readiness.check()
            var body = report.details
            body["status"] = report.ready ? "ready" : "not ready"
            return HealthEndpoints.json(status: report.ready ? .ok : .serviceUnavailable, body)
        }
    }

    static func json(status: HTTPResponse.Status, _ fields: [String: String]) -> Response {
        var object = JSONObject()
        for key in fields.keys.sorted() { object[key] = .string(fields[key] ?? "") }
        var buffer = ByteBuffer()
        buffer.writeBytes(JSONWriter.bytes(.object(object)))
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}
