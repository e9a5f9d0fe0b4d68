import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// HiBob's documented API contract on 127.0.0.1, for the connector's
/// end-to-end tests. Each rule names its entry in docs/CONNECTORS.md
/// ("HiBob", H1–H6), where its public source is cited; rules marked
/// *assumption* there are not in HiBob's documentation.
public final class HiBobContractServer: Sendable {
    public struct Employee: Sendable {
        public var id: String
        public var email: String
        public var firstName: String
        public var surname: String
        public var site: String
        public var startDate: String?
        public var reportsTo: String?
        public var active = true
        public var bankAccounts: [JSONValue] = []

        public init(id: String, email: String, firstName: String, surname: String, site: String) {
            self.id = id
            self.email = email
            self.firstName = firstName
            self.surname = surname
            self.site = site
        }

        var displayName: String { "\(firstName) \(surname)" }
    }

    public struct State: Sendable {
        public var employees: [Employee] = [
            Employee(id: "3332883894235038486", email: "selina@example.com", firstName: "Selina", surname: "Kyle", site: "Stockholm")
        ]
        /// The company's site list (H3: a site must be one of them).
        public var sites: Set<String> = ["Stockholm", "New-York"]
        public var creates = 0
        public var duplicates = 0
        public var searches = 0
        /// Searches allowed per minute (H5: 50 in HiBob).
        public var searchesPerMinute = 50
        public var searchWindow = SlidingWindowLimit(seconds: 60)
        public var throttled = 0
        public var serial = 0
    }

    public let state = Mutex(State())
    let serviceUserID: String
    let serviceUserToken: String

    public init(serviceUserID: String = "SERVICE-4711", serviceUserToken: String = "hibob-token-0123456789abcdef") {
        self.serviceUserID = serviceUserID
        self.serviceUserToken = serviceUserToken
    }

    /// H6: errors are `{"key": …, "error": …}`.
    static func error(_ status: Int, _ key: String, _ message: String) -> Response {
        jsonResponse(status, #"{"key": "\#(key)", "error": "\#(message)"}"#)
    }

    /// H1: HTTP basic with the service user's ID and token, else 401.
    func admit(_ request: Request) -> Response? {
        let expected = "Basic " + Data("\(serviceUserID):\(serviceUserToken)".utf8).base64EncodedString()
        return request.headers[.authorization] == expected ? nil : Self.error(401, "tokenNotMatch", "The request could not be authenticated.")
    }

    static func employeeJSON(_ employee: Employee, fields: [String]) -> String {
        var members = [#""id": "\#(employee.id)""#]
        if fields.contains("root.email") { members += [#""email": "\#(employee.email)""#, #""/root/email": {"value": "\#(employee.email)"}"#] }
        if fields.contains("root.displayName") {
            members += [#""displayName": "\#(employee.displayName)""#, #""/root/displayName": {"value": "\#(employee.displayName)"}"#]
        }
        members.append(#""/root/id": {"value": "\#(employee.id)"}"#)
        return "{" + members.joined(separator: ", ") + "}"
    }

    /// H2 and H5: `POST /v1/people/search` with `fields` (at most 400),
    /// `filters` (at most one, `root.id` or `root.email` with `equals`; an
    /// empty list is refused) and `showInactive` (default false);
    /// `{"employees": [...]}`, no paging; 50 searches a minute, else 429.
    func search(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes) else { return Self.error(400, "invalidRequest", "Malformed JSON.") }
        let fields = (body["fields"]?.arrayValue ?? []).compactMap(\.stringValue)
        guard fields.count <= 400 else { return Self.error(400, "invalidRequest", "At most 400 fields.") }
        var filter: (path: String, values: [String])?
        if let filters = body["filters"] {
            guard let list = filters.arrayValue, list.count == 1, let path = list[0]["fieldPath"]?.stringValue,
                ["root.id", "root.email"].contains(path), list[0]["operator"]?.stringValue == "equals"
            else { return Self.error(400, "invalidFilter", "Only one filter on root.id or root.email with equals.") }
            filter = (path, (list[0]["values"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        let showInactive = body["showInactive"]?.boolValue ?? false
        return state.withLock { state in
            guard state.searchWindow.admit(limit: state.searchesPerMinute) else {
                state.throttled += 1
                return Self.error(429, "tooManyRequests", "Rate limit exceeded.")
            }
            state.searches += 1
            let found = state.employees.filter { employee in
                guard showInactive || employee.active else { return false }
                guard let filter else { return true }
                return filter.values.contains(filter.path == "root.id" ? employee.id : employee.email)
            }
            return jsonResponse(200, #"{"employees": [\#(found.map { Self.employeeJSON($0, fields: fields) }.joined(separator: ", "))]}"#)
        }
    }

    /// H3: `POST /v1/people`: `email` (valid, unique within the company),
    /// `firstName` and `surname` (at most 50, letters and a few marks),
    /// `work.site` (an existing site) and `work.startDate` (YYYY-MM-DD)
    /// required; `work.reportsTo.id` an existing employee; 200 with the employee.
    func create(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes) else { return Self.error(400, "invalidRequest", "Malformed JSON.") }
        let email = body["email"]?.stringValue ?? ""
        guard email.firstMatch(of: /^[^@\s]+@[^@\s]+\.[^@\s]+$/) != nil else { return Self.error(400, "invalidField", "email is not valid.") }
        let allowedMarks = Set("´`_-;,./'’\"() ")
        for name in ["firstName", "surname"] {
            let value = body[name]?.stringValue ?? ""
            guard !value.isEmpty, value.count <= 50, value.allSatisfy({ $0.isLetter || allowedMarks.contains($0) }) else {
                return Self.error(400, "invalidField", "\(name) is missing or not valid.")
            }
        }
        guard let site = body["work"]?["site"]?.stringValue, let start = body["work"]?["startDate"]?.stringValue else {
            return Self.error(400, "missingField", "work.site and work.startDate are required.")
        }
        guard start.firstMatch(of: /^\d{4}-\d{2}-\d{2}$/) != nil else { return Self.error(400, "invalidField", "work.startDate is not a date.") }
        let reportsTo = body["work"]?["reportsTo"]?["id"]?.stringValue
        return state.withLock { state in
            guard state.sites.contains(site) else { return Self.error(400, "invalidField", "work.site is not a value of the site list.") }
            if let reportsTo, !state.employees.contains(where: { $0.id == reportsTo }) {
                return Self.error(400, "invalidField", "work.reportsTo is not an employee.")
            }
            guard !state.employees.contains(where: { $0.email.lowercased() == email.lowercased() }) else {
                state.duplicates += 1
                return Self.error(400, "duplicateRecord", "An employee with this email already exists.")
            }
            state.serial += 1
            var employee = Employee(
                id: "\(4_000_000_000 + state.serial)", email: email, firstName: body["firstName"]?.stringValue ?? "",
                surname: body["surname"]?.stringValue ?? "", site: site)
            employee.startDate = start
            employee.reportsTo = reportsTo
            state.employees.append(employee)
            state.creates += 1
            return jsonResponse(
                200,
                #"{"id": "\#(employee.id)", "email": "\#(email)", "firstName": "\#(employee.firstName)", "surname": "\#(employee.surname)", "displayName": "\#(employee.displayName)", "work": {"site": "\#(site)", "startDate": "\#(start)"}}"#
            )
        }
    }

    /// H4: `POST /v1/people/{id}/bank-accounts` with the account's fields
    /// (`iban`, `allocation` one of percent/amount/remaining, …).
    func addBankAccount(_ request: Request, id: String) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 16))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes) else { return Self.error(400, "invalidRequest", "Malformed JSON.") }
        if let allocation = body["allocation"]?.stringValue, !["percent", "amount", "remaining"].contains(allocation) {
            return Self.error(400, "invalidField", "allocation is not valid.")
        }
        return state.withLock { state in
            guard let index = state.employees.firstIndex(where: { $0.id == id }) else { return Self.error(404, "notFound", "No such employee.") }
            state.employees[index].bankAccounts.append(body)
            return Response(status: .ok)
        }
    }

    /// Serves the API on one loopback port.
    public func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/people/search") { request, _ in try await self.search(request) }
        router.post("/v1/people") { request, _ in try await self.create(request) }
        router.post("/v1/people/:id/bank-accounts") { request, context in
            try await self.addBankAccount(request, id: context.parameters.get("id") ?? "")
        }
        return try await withLocalHTTPServer(router, label: "hibob", body)
    }
}
