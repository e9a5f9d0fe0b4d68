import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// BambooHR's documented API contract on 127.0.0.1, for the connector's
/// end-to-end tests. Each rule names its entry in docs/CONNECTORS.md
/// ("BambooHR", B1–B6), where its public source is cited; rules marked
/// *assumption* there are not in BambooHR's documentation.
public final class BambooHRContractServer: Sendable {
    public struct Employee: Sendable {
        public var id: String
        public var displayName: String
        public var workEmail: String
        public var hireDate: String?
        public var reportsTo: String?

        public init(id: String, displayName: String, workEmail: String, hireDate: String?, reportsTo: String?) {
            self.id = id
            self.displayName = displayName
            self.workEmail = workEmail
            self.hireDate = hireDate
            self.reportsTo = reportsTo
        }
    }

    public struct State: Sendable {
        public var employees: [Employee] = [
            Employee(id: "7", displayName: "Selina Kyle", workEmail: "selina@example.com", hireDate: "2019-04-01", reportsTo: nil)
        ]
        public var creates = 0
        public var duplicates = 0
        public var jobInfoRows: [(employee: String, reportsTo: String)] = []
        /// Requests within the last second, for throttling (B5).
        public var window = SlidingWindowLimit(seconds: 1)
        public var perSecond = Int.max
        public var throttled = 0
        public var unauthorized = 0
    }

    public let state = Mutex(State())
    let apiKey: String
    let companyDomain: String

    public init(apiKey: String = "bamboo-key-0123456789abcdef", companyDomain: String = "acme") {
        self.apiKey = apiKey
        self.companyDomain = companyDomain
    }

    static func json(_ status: Int, _ text: String, headers: HTTPFields = [:]) -> Response {
        jsonResponse(status, text, headers: headers)
    }

    /// B1 (HTTP basic, the API key as the user, any password) and B5 (throttled: 503 with Retry-After).
    func admit(_ request: Request) -> Response? {
        let expected = Data(apiKey.utf8)
        let header = request.headers[.authorization] ?? ""
        let decoded = header.hasPrefix("Basic ") ? Data(base64Encoded: String(header.dropFirst(6))) : nil
        let user = decoded.flatMap { String(data: $0, encoding: .utf8) }?.split(separator: ":", maxSplits: 1).first.map { Data($0.utf8) }
        return state.withLock { state in
            guard user == expected else {
                state.unauthorized += 1
                return Self.json(401, "")
            }
            guard state.window.admit(limit: state.perSecond) else {
                state.throttled += 1
                var headers = HTTPFields()
                headers[.init("Retry-After")!] = "1"
                return Self.json(503, "", headers: headers)
            }
            return nil
        }
    }

    /// B2–B3: `POST /api/gateway.php/{domain}/v1/employees/`: firstName and
    /// lastName at least (else 400 with `X-BambooHR-Error-Messsage`); a work
    /// e-mail already used gives 409; 201 with the new id in `Location`, no body.
    func create(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes) else { return Self.json(400, "") }
        let first = body["firstName"]?.stringValue ?? ""
        let last = body["lastName"]?.stringValue ?? ""
        guard !first.isEmpty, !last.isEmpty else {
            var headers = HTTPFields()
            headers[.init("X-BambooHR-Error-Messsage")!] = "firstName and lastName are required"
            return Self.json(400, "", headers: headers)
        }
        let email = body["workEmail"]?.stringValue ?? ""
        return state.withLock { state in
            if !email.isEmpty, state.employees.contains(where: { $0.workEmail == email }) {
                state.duplicates += 1
                return Self.json(409, "")
            }
            let id = String(40 + state.employees.count)
            state.employees.append(
                Employee(id: id, displayName: "\(first) \(last)", workEmail: email, hireDate: body["hireDate"]?.stringValue, reportsTo: nil))
            state.creates += 1
            var headers = HTTPFields()
            headers[.location] = "https://api.bamboohr.com/api/gateway.php/\(companyDomain)/v1/employees/\(id)"
            return Response(status: .created, headers: headers)
        }
    }

    /// B4: `GET …/v1/employees/directory`: `{"fields": [...], "employees": [{id, displayName, workEmail, …}]}`.
    func directory(_ request: Request) async throws -> Response {
        if let refusal = admit(request) { return refusal }
        let employees = state.withLock { $0.employees }
        let items = employees.map { #"{"id": "\#($0.id)", "displayName": "\#($0.displayName)", "workEmail": "\#($0.workEmail)"}"# }
        return Self.json(200, #"{"fields": [{"id": "displayName"}, {"id": "workEmail"}], "employees": [\#(items.joined(separator: ","))]}"#)
    }

    /// B6: `POST …/v1/employees/{id}/tables/jobInfo` with `date` and `reportsTo` (an employee id).
    func jobInfo(_ request: Request, id: String) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 16))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes), let reportsTo = body["reportsTo"]?.stringValue else { return Self.json(400, "") }
        return state.withLock { state in
            guard let index = state.employees.firstIndex(where: { $0.id == id }),
                state.employees.contains(where: { $0.id == reportsTo })
            else { return Self.json(404, "") }
            state.employees[index].reportsTo = reportsTo
            state.jobInfoRows.append((id, reportsTo))
            return Response(status: .ok)
        }
    }

    /// Serves the API of `companyDomain` on one loopback port.
    public func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        let base = "/api/gateway.php/\(companyDomain)/v1/employees"
        router.post(RouterPath(base + "/")) { request, _ in try await self.create(request) }
        router.get(RouterPath(base + "/directory")) { request, _ in try await self.directory(request) }
        router.post(RouterPath(base + "/:id/tables/jobInfo")) { request, context in
            try await self.jobInfo(request, id: context.parameters.get("id") ?? "")
        }
        return try await withLocalHTTPServer(router, label: "bamboohr", body)
    }
}
