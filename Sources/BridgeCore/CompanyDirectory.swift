import JSON
import Synchronization

/// The latest `company/signup` facts per company, kept in memory for the
/// router so mapping evaluation stays pure (`companies["<id>"].settings…`).
/// Loaded from the store at start-up; updated as signups are routed.
public final class CompanyDirectory: Sendable {
    private let companies: Mutex<[String: CompanySnapshot]>

    public init(_ snapshots: [CompanySnapshot] = []) {
        companies = Mutex(Dictionary(snapshots.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last }))
    }

    public func update(_ snapshot: CompanySnapshot) {
        companies.withLock { $0[snapshot.id] = snapshot }
    }

    public var count: Int { companies.withLock { $0.count } }

    /// `{ "<id>": {id, internal_id, name, settings} }`
    public func json() -> JSONValue {
        let snapshots = companies.withLock { Array($0.values) }
        var object = JSONObject()
        for snapshot in snapshots.sorted(by: { $0.id < $1.id }) {
            object[snapshot.id] = .object(JSONObject([
                .init(key: "id", value: .string(snapshot.id)),
                .init(key: "internal_id", value: snapshot.internalID.map(JSONValue.string) ?? .null),
                .init(key: "name", value: snapshot.name.map(JSONValue.string) ?? .null),
                .init(key: "settings", value: snapshot.settings ?? .null),
            ]))
        }
        return .object(object)
    }
}
