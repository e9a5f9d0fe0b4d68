import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// Personio's documented API v2 contract on 127.0.0.1, for the connector's
/// end-to-end tests. Each rule names its entry in docs/CONNECTORS.md
/// ("Personio", P1–P7), where its public source is cited; rules marked
/// *assumption* there are not in Personio's documentation.
public final class PersonioContractServer: Sendable {
    public struct Person: Sendable {
        public var id: String
        public var email: String
        public var firstName: String
        public var lastName: String
        public var status = "ACTIVE"
        public var employmentID: String
        public var startDate: String?
        public var supervisor: String?
        public var attributes: [String: String] = [:]

        public init(id: String, email: String, firstName: String, lastName: String, employmentID: String) {
            self.id = id
            self.email = email
            self.firstName = firstName
            self.lastName = lastName
            self.employmentID = employmentID
        }
    }

    public struct State: Sendable {
        public var persons: [Person] = [
            Person(id: "3003", email: "selina@example.com", firstName: "Selina", lastName: "Kyle", employmentID: "e-3003")
        ]
        /// The company's custom attributes (P4: the IBAN is one, its id per company).
        public var attributes: Set<String> = ["dynamic_306"]
        public var creates = 0
        public var duplicates = 0
        public var supervisorsSet = 0
        /// Access token → when it stops working (P1: 86400 s in Personio; shorter here).
        public var access: [String: Date] = [:]
        public var accessLifetime = 86_400
        public var tokensIssued = 0
        public var expiredPresented = 0
        /// Requests allowed in any second before a 429 (P7: Personio publishes no v2 number).
        public var perSecond = Int.max
        public var window = SlidingWindowLimit(seconds: 1)
        public var throttled = 0
        public var serial = 0
    }

    public let state = Mutex(State())
    let clientID: String
    let clientSecret: String

    public init(clientID: String = "papi-client-0123456789", clientSecret: String = "personio-secret-abcdefghij") {
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    /// P6: an error as `application/problem+json` with `personio_trace_id`, `timestamp` and `errors[]`.
    static func problem(_ status: Int, _ title: String, _ detail: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        let body =
            #"{"personio_trace_id": "\#(UUID().uuidString.lowercased())", "timestamp": "2026-12-03T12:00:00Z", "errors": [{"title": "\#(title)", "detail": "\#(detail)", "type": "https://developer.personio.de/reference/errors#common.bad_request", "_meta": {}}]}"#
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// P1: `POST /v2/auth/token`, form-encoded only, `grant_type=client_credentials`
    /// with `client_id` and `client_secret` in the body; errors are 400
    /// `application/problem+json` in OAuth2's shape.
    func token(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        func refuse(_ error: String) -> Response {
            var headers = HTTPFields()
            headers[.contentType] = "application/problem+json"
            let text = #"{"error": "\#(error)", "error_description": null, "timestamp": "2026-12-03T12:00:00Z", "trace_id": "t"}"#
            return Response(status: .badRequest, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else { return refuse("invalid_request") }
        let fields = formFields(body)
        guard fields["grant_type"] == "client_credentials" else { return refuse("unsupported_grant_type") }
        // Personio's "Invalid Credentials" example answers a wrong secret with unauthorized_client.
        guard fields["client_id"] == clientID else { return refuse("invalid_client") }
        guard fields["client_secret"] == clientSecret else { return refuse("unauthorized_client") }
        return state.withLock { state in
            state.serial += 1
            state.tokensIssued += 1
            let access = "papi-at-\(state.serial)-OUYVj9QdAyL8FNaa0PB7X2CZVb0uHDTY"
            state.access[access] = Date().addingTimeInterval(TimeInterval(state.accessLifetime))
            return jsonResponse(
                200,
                #"{"access_token": "\#(access)", "expires_in": \#(state.accessLifetime), "token_type": "Bearer", "scope": "personio:persons:read personio:persons:write"}"#
            )
        }
    }

    /// P2 (a valid bearer token, else 401) and P7 (over the limit: 429), for every API request.
    func admit(_ request: Request) -> Response? {
        let presented = (request.headers[.authorization] ?? "").replacingOccurrences(of: "Bearer ", with: "")
        return state.withLock { state in
            guard let expiry = state.access[presented] else { return Self.problem(401, "Unauthorized", "The access token is invalid.") }
            guard expiry > Date() else {
                state.expiredPresented += 1
                return Self.problem(401, "Unauthorized", "The access token has expired.")
            }
            guard state.window.admit(limit: state.perSecond) else {
                state.throttled += 1
                return Self.problem(429, "Too many requests", "Rate limit exceeded.")
            }
            return nil
        }
    }

    static func personJSON(_ person: Person) -> String {
        #"{"id": "\#(person.id)", "email": "\#(person.email)", "first_name": "\#(person.firstName)", "last_name": "\#(person.lastName)", "status": "\#(person.status)", "custom_attributes": [], "employments": [{"id": "\#(person.employmentID)"}]}"#
    }

    /// P3: `GET /v2/persons` filtered by `email` (a comma list), `first_name`,
    /// `last_name`, `status`, combined with AND; `limit` 1–50 (default 10);
    /// `{"_data": [...], "_meta": {"links": {...}}}`.
    func list(_ request: Request) async throws -> Response {
        if let refusal = admit(request) { return refusal }
        let query = request.uri.queryParameters
        let limit = query["limit"].map { Int(String($0)) ?? 0 } ?? 10
        guard (1...50).contains(limit) else { return Self.problem(400, "Bad request", "Provided request parameters are invalid.") }
        let emails = query["email"].map { String($0).lowercased().split(separator: ",").map(String.init) }
        let persons = state.withLock { $0.persons }.filter { person in
            (emails.map { $0.contains(person.email.lowercased()) } ?? true)
                && (query["first_name"].map { String($0) == person.firstName } ?? true)
                && (query["last_name"].map { String($0) == person.lastName } ?? true)
                && (query["status"].map { String($0) == person.status } ?? true)
        }
        let items = persons.prefix(limit).map(Self.personJSON).joined(separator: ",")
        return jsonResponse(200, #"{"_data": [\#(items)], "_meta": {"links": {"self": {"href": "https://api.personio.de/v2/persons"}}}}"#)
    }

    /// P5: `GET /v2/persons/{id}`: the person with its employment references, or 404.
    func read(_ request: Request, id: String) async throws -> Response {
        if let refusal = admit(request) { return refusal }
        guard let person = state.withLock({ $0.persons.first { $0.id == id } }) else {
            return Self.problem(404, "Resource not found", "The person was not found.")
        }
        return jsonResponse(200, Self.personJSON(person))
    }

    /// P4: `POST /v2/persons` (JSON): `first_name` and `last_name` required,
    /// a unique `email`, `employments[].employment_start_date` as YYYY-MM-DD,
    /// `custom_attributes[]` of existing attributes only; 201 with the new id.
    func create(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard request.headers[.contentType]?.hasPrefix("application/json") == true, let body = try? JSONParser.parse(bytes) else {
            return Self.problem(400, "Bad request", "The request body is not JSON.")
        }
        let first = body["first_name"]?.stringValue ?? ""
        let last = body["last_name"]?.stringValue ?? ""
        let email = (body["email"]?.stringValue ?? "").lowercased()
        guard !first.isEmpty, !last.isEmpty else { return Self.problem(400, "Bad request", "first_name and last_name are required.") }
        var attributes: [String: String] = [:]
        for attribute in body["custom_attributes"]?.arrayValue ?? [] {
            attributes[attribute["id"]?.stringValue ?? ""] = attribute["value"]?.stringValue ?? ""
        }
        let start = body["employments"]?.arrayValue?.first?["employment_start_date"]?.stringValue
        if let start, start.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) == nil {
            return Self.problem(400, "Bad request", "employment_start_date must be a date.")
        }
        return state.withLock { state in
            for id in attributes.keys where !state.attributes.contains(id) {
                return Self.problem(400, "Bad request", "Unknown custom attribute \(id).")
            }
            if !email.isEmpty, state.persons.contains(where: { $0.email.lowercased() == email }) {
                state.duplicates += 1
                return Self.problem(400, "Bad request", "The email must be unique.")
            }
            state.serial += 1
            var person = Person(
                id: "\(4000 + state.serial)", email: email, firstName: first, lastName: last, employmentID: "e-\(4000 + state.serial)")
            person.startDate = start
            person.attributes = attributes
            state.persons.append(person)
            state.creates += 1
            return jsonResponse(201, #"{"id": "\#(person.id)", "_meta": {}}"#)
        }
    }

    /// P5: `PATCH /v2/persons/{person_id}/employments/{employment_id}` with
    /// `{"supervisor": {"id": …}}`: the supervisor must be an existing person.
    func patchEmployment(_ request: Request, person: String, employment: String) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 16))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes), let supervisor = body["supervisor"]?["id"]?.stringValue else {
            return Self.problem(400, "Bad request", "supervisor.id is required.")
        }
        return state.withLock { state in
            guard let index = state.persons.firstIndex(where: { $0.id == person && $0.employmentID == employment }) else {
                return Self.problem(404, "Resource not found", "The employment was not found.")
            }
            guard state.persons.contains(where: { $0.id == supervisor }) else {
                return Self.problem(400, "Bad request", "Supervisor with ID \(supervisor) not found.")
            }
            state.persons[index].supervisor = supervisor
            state.supervisorsSet += 1
            return jsonResponse(200, #"{"id": "\#(employment)"}"#)
        }
    }

    /// Serves the token endpoint and the API on one loopback port.
    public func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v2/auth/token") { request, _ in try await self.token(request) }
        router.get("/v2/persons") { request, _ in try await self.list(request) }
        router.post("/v2/persons") { request, _ in try await self.create(request) }
        router.get("/v2/persons/:id") { request, context in try await self.read(request, id: context.parameters.get("id") ?? "") }
        router.patch("/v2/persons/:id/employments/:employment") { request, context in
            try await self.patchEmployment(
                request, person: context.parameters.get("id") ?? "", employment: context.parameters.get("employment") ?? "")
        }
        return try await withLocalHTTPServer(router, label: "personio", body)
    }
}
