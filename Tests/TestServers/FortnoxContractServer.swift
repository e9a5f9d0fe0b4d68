import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// Fortnox's documented API contract on 127.0.0.1, for the connector's
/// end-to-end tests. Each rule names its entry in docs/CONNECTORS.md
/// ("Fortnox", F1–F7), where its public source is cited; rules marked
/// *assumption* there are not in Fortnox's documentation.
public final class FortnoxContractServer: Sendable {
    public struct State: Sendable {
        /// The token endpoint (F1: a code once, each refresh token once; access tokens 3600 s in Fortnox, shorter here).
        public var tokens = RotatingRefreshTokens(prefix: "fx", codes: ["fortnox-code-1", "fortnox-code-2"])
        /// Employees by EmployeeId, as created (F4).
        public var employees: [String: JSONValue] = [:]
        public var creates = 0
        /// API requests within the last 5 s (F3).
        public var window = SlidingWindowLimit(seconds: 5)
        public var throttled = 0
    }

    public let state = Mutex(State())
    let clientID: String
    let clientSecret: String

    public init(clientID: String = "fx-client-id", clientSecret: String = "fx-client-secret") {
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    static func error(_ status: Int, _ code: Int, _ message: String) -> Response {
        json(status, #"{"ErrorInformation": {"error": 1, "message": "\#(message)", "code": \#(code)}}"#)
    }

    static func json(_ status: Int, _ text: String, headers: HTTPFields = [:]) -> Response {
        jsonResponse(status, text, headers: headers)
    }

    /// F1: `POST /oauth-v1/token`, form body, the client as HTTP basic;
    /// `authorization_code` (a code once) and `refresh_token` (each refresh
    /// token once: a new one with every refresh).
    func token(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        let fields = formFields(body)
        let basic = "Basic " + Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()
        guard request.headers[.authorization] == basic else { return Self.json(401, #"{"error": "invalid_client"}"#) }
        let answer = state.withLock { $0.tokens.answer(fields, scope: "salary") }
        return Self.json(answer.status, answer.body)
    }

    /// F2 (a valid bearer) and F3 (25 requests in any 5 s, else 429), for every API request.
    func admit(_ request: Request) -> Response? {
        state.withLock { state in
            guard state.tokens.admits(request.headers[.authorization]) else { return Self.error(401, 2_000_311, "Invalid access token") }
            guard state.window.admit(limit: 25) else {
                state.throttled += 1
                return Self.json(429, #"{"message": "Too Many Requests"}"#)
            }
            return nil
        }
    }

    /// F5: `GET /3/employees/{EmployeeId}`: the employee, or 404.
    func find(_ request: Request, id: String) async throws -> Response {
        if let refusal = admit(request) { return refusal }
        return state.withLock { state in
            guard let employee = state.employees[id] else { return Self.error(404, 2_000_430, "Kan inte hitta anställd.") }
            return Self.json(200, #"{"Employee": \#(JSONWriter.string(employee))}"#)
        }
    }

    /// F4: `POST /3/employees` with `{"Employee": {...}}`: FirstName, LastName
    /// and Email required; dates as YYYY-MM-DD; a unique EmployeeId; known
    /// fields only; 201 with the employee.
    func create(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard request.headers[.contentType]?.hasPrefix("application/json") == true else { return Self.error(400, 2_001_392, "Invalid content type") }
        guard let body = try? JSONParser.parse(bytes), case .object(let members)? = body["Employee"] else {
            return Self.error(400, 2_001_392, "Ogiltig eller tom begäran")
        }
        let known: Set<String> = [
            "EmployeeId", "FirstName", "LastName", "Email", "PersonalIdentityNumber", "EmploymentDate", "ClearingNo", "BankAccountNo", "Phone1",
            "Address1", "PostCode", "City", "JobTitle",
        ]
        for member in members where !known.contains(member.key) { return Self.error(400, 2_001_399, "Ogiltigt fältnamn: \(member.key)") }
        for required in ["FirstName", "LastName", "Email"] where (body["Employee"]?[required]?.stringValue ?? "").isEmpty {
            return Self.error(400, 2_000_359, "\(required) måste anges")
        }
        if let date = body["Employee"]?["EmploymentDate"]?.stringValue,
            date.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) == nil
        {
            return Self.error(400, 2_000_359, "Felaktigt datumformat")
        }
        if let number = body["Employee"]?["PersonalIdentityNumber"]?.stringValue,
            number.range(of: #"^\d{8}-\d{4}$"#, options: .regularExpression) == nil
        {
            return Self.error(400, 2_000_359, "Felaktigt personnummer")
        }
        return state.withLock { state in
            let id = body["Employee"]?["EmployeeId"]?.stringValue ?? "\(state.employees.count + 1)"
            guard state.employees[id] == nil else { return Self.error(400, 2_000_637, "Anställningsnummer \(id) används redan") }
            state.employees[id] = body["Employee"] ?? .null
            state.creates += 1
            return Self.json(201, #"{"Employee": \#(JSONWriter.string(body["Employee"] ?? .null))}"#)
        }
    }

    /// Serves the token endpoint and the API on one loopback port.
    public func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/oauth-v1/token") { request, _ in try await self.token(request) }
        router.get("/3/employees/:id") { request, context in try await self.find(request, id: context.parameters.get("id") ?? "") }
        router.post("/3/employees") { request, _ in try await self.create(request) }
        return try await withLocalHTTPServer(router, label: "fortnox", body)
    }
}
