import Clocks
import Domain
import Mapping
import Metrics

/// The gates of every downstream this process sends to (`DownstreamGate`),
/// keyed by scheme, host and port (and company, for limits per company).
/// Shared by the REST and flow executors, so a 429 or an open breaker
/// pauses everything that goes to that downstream.
public actor Downstreams {
    var gates: [String: DownstreamGate] = [:]
    let metricsFactory: (any MetricsFactory)?

    /// No downstream seen yet. With `metricsFactory`, per downstream (its
    /// scheme, host and port; never a company or a path): requests by outcome,
    /// their duration, waits for a limit, and whether the breaker is open.
    public init(metricsFactory: (any MetricsFactory)? = nil) {
        self.metricsFactory = metricsFactory
    }

    /// See `DownstreamGate.admit`; a wait is counted (`inline` when the
    /// attempt waits it out, `postponed` when the job is).
    public func admit(_ key: String, rules: DownstreamGate.Rules, now: Timestamp, inlineUpTo: Duration) -> DownstreamGate.Admission {
        let admission = gates[key, default: DownstreamGate()].admit(now: now, rules: rules)
        if case .wait(let until, _) = admission, let factory = metricsFactory {
            let kind = until.milliseconds - now.milliseconds <= inlineUpTo.milliseconds ? "inline" : "postponed"
            Counter(
                label: "jobylon_bridge_downstream_waits_total", dimensions: [("downstream", Downstreams.origin(key)), ("kind", kind)],
                factory: factory
            )
            .increment()
        }
        return admission
    }

    /// See `DownstreamGate.finished`; `duration` is how long the request took.
    public func finished(_ key: String, _ result: DownstreamGate.Result, rules: DownstreamGate.Rules, now: Timestamp, duration: Duration? = nil) {
        gates[key, default: DownstreamGate()].finished(result, now: now, rules: rules)
        guard let factory = metricsFactory else { return }
        let downstream = Downstreams.origin(key)
        let outcome: String
        switch result {
        case .answered: outcome = "answered"
        case .failed: outcome = "failed"
        case .throttled: outcome = "throttled"
        }
        Counter(label: "jobylon_bridge_downstream_requests_total", dimensions: [("downstream", downstream), ("outcome", outcome)], factory: factory)
            .increment()
        if let duration {
            Timer(label: "jobylon_bridge_downstream_request_seconds", dimensions: [("downstream", downstream)], factory: factory)
                .recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
        let open = gates[key]?.breaker(at: now) == .open
        Gauge(label: "jobylon_bridge_downstream_breaker_open", dimensions: [("downstream", downstream)], factory: factory).record(open ? 1 : 0)
    }

    /// The scheme, host and port of a gate's key (without the company).
    static func origin(_ key: String) -> String {
        key.components(separatedBy: " company ").first ?? key
    }

    /// `https://hr.example:8443` of a URL (lower-cased), plus the company for limits per company.
    public static func key(url: String, limits: RequestLimits, companyID: String?) -> String {
        let origin = origin(url: url)
        guard limits.per == .company else { return origin }
        return origin + " company " + (companyID ?? "-")
    }

    /// The scheme, host and port of `url`, lower-cased, without a user part
    /// (`https://user:secret@host` must not reach a metric label).
    public static func origin(url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url.lowercased() }
        let rest = url[scheme.upperBound...]
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<end]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        return (String(url[..<scheme.upperBound]) + authority).lowercased()
    }

    /// The mapping's limits as the gate applies them.
    public static func rules(_ limits: RequestLimits) -> DownstreamGate.Rules {
        DownstreamGate.Rules(
            rate: limits.rate.map { (count: $0.count, window: .seconds(Int64($0.windowSeconds))) }, concurrency: limits.concurrency,
            breakerAfter: limits.breakerAfter, breakerOpen: .seconds(Int64(limits.breakerOpenSeconds)),
            throttlePause: .seconds(Int64(limits.throttlePauseSeconds)))
    }
}
