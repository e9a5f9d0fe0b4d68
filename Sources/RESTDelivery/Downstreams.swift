import Clocks
import Domain
import Mapping

/// The gates of every downstream this process sends to (`DownstreamGate`),
/// keyed by scheme, host and port (and company, for limits per company).
/// Shared by the REST and flow executors, so a 429 or an open breaker
/// pauses everything that goes to that downstream.
public actor Downstreams {
    var gates: [String: DownstreamGate] = [:]

    /// No downstream seen yet.
    public init() {}

    /// See `DownstreamGate.admit`.
    public func admit(_ key: String, rules: DownstreamGate.Rules, now: Timestamp) -> DownstreamGate.Admission {
        gates[key, default: DownstreamGate()].admit(now: now, rules: rules)
    }

    /// See `DownstreamGate.finished`.
    public func finished(_ key: String, _ result: DownstreamGate.Result, rules: DownstreamGate.Rules, now: Timestamp) {
        gates[key, default: DownstreamGate()].finished(result, now: now, rules: rules)
    }

    /// The breaker of one downstream.
    public func breaker(_ key: String, now: Timestamp) -> DownstreamGate.BreakerState {
        gates[key]?.breaker(at: now) ?? .closed
    }

    /// `https://hr.example:8443` of a URL (lower-cased), plus the company for limits per company.
    public static func key(url: String, limits: RequestLimits, companyID: String?) -> String {
        var origin = url
        if let scheme = url.range(of: "://") {
            let rest = url[scheme.upperBound...]
            let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            origin = String(url[..<end])
        }
        origin = origin.lowercased()
        guard limits.per == .company else { return origin }
        return origin + " company " + (companyID ?? "-")
    }

    /// The mapping's limits as the gate applies them.
    public static func rules(_ limits: RequestLimits) -> DownstreamGate.Rules {
        DownstreamGate.Rules(
            rate: limits.rate.map { (count: $0.count, window: Duration.seconds(Int64($0.windowSeconds))) }, concurrency: limits.concurrency,
            breakerAfter: limits.breakerAfter, breakerOpen: .seconds(Int64(limits.breakerOpenSeconds)))
    }
}
