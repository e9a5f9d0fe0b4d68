import Domain
import JSON
import Synchronization

/// The latest `company/signup` facts per company, kept in memory for the
/// router so mapping evaluation stays pure (`companies["<id>"].settings…`).
/// Loaded from the store at start-up; updated as signups are routed.
public final class CompanyDirectory: Sendable {
    private struct State {
        var companies: [String: CompanySnapshot]
        /// Rebuilt only after a change: every routed event reads it.
        var cached: JSONValue?
    }

    private let state: Mutex<State>

    /// Starts from the store's latest signup facts.
    public init(_ snapshots: [CompanySnapshot] = []) {
        state = Mutex(State(companies: Dictionary(snapshots.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })))
    }

    /// A newer signup replaces what was known of the company.
    public func update(_ snapshot: CompanySnapshot) {
        state.withLock {
            $0.companies[snapshot.id] = snapshot
            $0.cached = nil
        }
    }

    /// Companies known.
    public var count: Int { state.withLock { $0.companies.count } }

    /// `{ "<id>": {id, internal_id, name, settings} }`
    public func json() -> JSONValue {
        if let cached = state.withLock({ $0.cached }) { return cached }
        let built = build(state.withLock { Array($0.companies.values) })
        state.withLock { if $0.cached == nil { $0.cached = built } }
        return built
    }

    private func build(_ snapshots: [CompanySnapshot]) -> JSONValue {
        var object = JSONObject()
        for snapshot in snapshots.sorted(by: { $0.id < $1.id }) {
            object[snapshot.id] = .object(
                JSONObject([
                    .init(key: "id", value: .string(snapshot.id)),
                    .init(key: "internal_id", value: snapshot.internalID.map(JSONValue.string) ?? .null),
                    .init(key: "name", value: snapshot.name.map(JSONValue.string) ?? .null),
                    .init(key: "settings", value: snapshot.settings ?? .null),
                ]))
        }
        return .object(object)
    }
}
