import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// Visma / Spiris Lön's documented payroll API v2 contract on 127.0.0.1, for
/// the connector's end-to-end tests. Each rule names its entry in
/// docs/CONNECTORS.md ("Visma / Spiris Lön", V1–V6), where its public source
/// is cited; rules marked *assumption* there are not in Visma's documentation.
public final class VismaPayrollContractServer: Sendable {
    public struct State: Sendable {
        /// The identity server (V1: rotating refresh tokens, each usable once).
        public var tokens = RotatingRefreshTokens(prefix: "vls", codes: ["visma-code-1", "visma-code-2"])
        /// Employees as created (V3), in order.
        public var employees: [JSONValue] = []
        public var creates = 0
        /// Arrivals per endpoint (method and path) within the last minute, for the quota (V6).
        public var windows: [String: SlidingWindowLimit] = [:]
        public var perMinute = 600
        public var throttled = 0
    }

    public let state = Mutex(State())
    let clientID: String
    let clientSecret: String

    public init(clientID: String = "vls-client-id", clientSecret: String = "vls-client-secret") {
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    /// V5: a 400 as `CommonExtendedBadRequest`.
    static func badRequest(_ code: Int, _ message: String, field: String? = nil) -> Response {
        let errors = field.map { #"[{"Field": "\#($0)", "ErrorCode": "\#(code)", "Message": "\#(message)", "Key": null}]"# } ?? "null"
        return jsonResponse(
            400,
            #"{"ErrorCode": \#(code), "DeveloperErrorMessage": "\#(message)", "ErrorId": "\#(UUID().uuidString.lowercased())", "Errors": \#(errors)}"#
        )
    }

    /// V1: `POST /connect/token`, a form body (else `invalid_request`), the client as HTTP basic.
    func token(_ request: Request) async throws -> Response {
        let fields = formFields(String(buffer: try await request.body.collect(upTo: 1 << 16)))
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else {
            return jsonResponse(400, #"{"error": "invalid_request"}"#)
        }
        let basic = "Basic " + Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()
        guard request.headers[.authorization] == basic else { return jsonResponse(400, #"{"error": "invalid_client"}"#) }
        let answer = state.withLock { $0.tokens.answer(fields, scope: "vls:api offline_access") }
        return jsonResponse(answer.status, answer.body)
    }

    /// V2 (a valid bearer, else 401) and V6 (600 requests a minute per client
    /// and endpoint, else 429 with ErrorCode 4010 and no `Retry-After`).
    func admit(_ request: Request) -> Response? {
        state.withLock { state in
            guard state.tokens.admits(request.headers[.authorization]) else { return Response(status: .unauthorized) }
            let endpoint = "\(request.method) \(request.uri.path)"
            guard state.windows[endpoint, default: SlidingWindowLimit(seconds: 60)].admit(limit: state.perMinute) else {
                state.throttled += 1
                return jsonResponse(
                    429,
                    #"{"ErrorCode": 4010, "DeveloperErrorMessage": "API calls quota exceeded! maximum admitted \#(state.perMinute) per Minute. Try again in 55 seconds.", "ErrorId": "\#(UUID().uuidString.lowercased())"}"#
                )
            }
            return nil
        }
    }

    /// V4: `GET /v2/employees` with `$filter=IdentificationNumber eq '…'`:
    /// `{"Meta": {...}, "Data": [EmployeeResponse]}`.
    func list(_ request: Request) async throws -> Response {
        if let refusal = admit(request) { return refusal }
        // The query key arrives percent-encoded (`%24filter`), as OData servers accept it.
        let parameters = request.uri.queryParameters
        let filter = (parameters["$filter"] ?? parameters["%24filter"]).map(String.init)
        var wanted: String?
        if let filter {
            guard let match = filter.firstMatch(of: /^IdentificationNumber eq '(\d{12})'$/) else {
                return Self.badRequest(2000, "The $filter expression is not valid.")
            }
            wanted = String(match.1)
        }
        let employees = state.withLock { $0.employees }.filter { wanted == nil || $0["IdentificationNumber"]?.stringValue == wanted }
        let data = employees.map { JSONWriter.string($0) }.joined(separator: ",")
        let meta =
            #"{"CurrentPage": 1, "PageSize": 50, "TotalNumberOfPages": 1, "TotalNumberOfResults": \#(employees.count), "ServerTimeUtc": "2026-12-03T12:00:00Z"}"#
        return jsonResponse(200, #"{"Meta": \#(meta), "Data": [\#(data)]}"#)
    }

    /// V3: `POST /v2/employees`: `FirstName`, `LastName` (letters only),
    /// `IdentificationNumber` (12 digits) and `Contract` with `SalaryType`
    /// (1 or 2) required; no other properties; 201 with `Id` and `State` 0 (a draft).
    func create(_ request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 20))
        if let refusal = admit(request) { return refusal }
        guard let body = try? JSONParser.parse(bytes), case .object(let members) = body else {
            return Self.badRequest(2000, "The request body is not valid JSON.")
        }
        let known: Set<String> = [
            "FirstName", "LastName", "EmployeeNumber", "IdentificationNumber", "EmailWork", "PhoneMobile", "PayslipSendMethod", "PayslipLanguage",
            "Contract",
        ]
        for member in members where !known.contains(member.key) { return Self.badRequest(2000, "Unknown property.", field: member.key) }
        for name in ["FirstName", "LastName"] {
            let value = body[name]?.stringValue ?? ""
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0 == " " || $0 == "-" }) else {
                return Self.badRequest(2000, "Only letters are allowed.", field: name)
            }
        }
        guard let number = body["IdentificationNumber"]?.stringValue, number.count == 12, number.allSatisfy(\.isNumber) else {
            return Self.badRequest(2000, "Personal identification or coordination number (11 or 12 digits).", field: "IdentificationNumber")
        }
        guard case .object(let contract)? = body["Contract"] else { return Self.badRequest(2000, "Contract is required.", field: "Contract") }
        let contractKnown: Set<String> = [
            "EmployeeCategory", "SalaryType", "ContractStartDate", "ContractEndDate", "UsesVLAFromDate", "UsesVLA", "TimeReserveType",
        ]
        for member in contract where !contractKnown.contains(member.key) {
            return Self.badRequest(2000, "Unknown property.", field: "Contract.\(member.key)")
        }
        guard let salaryType = body["Contract"]?["SalaryType"]?.numberValue?.int64Value, salaryType == 1 || salaryType == 2 else {
            return Self.badRequest(2000, "SalaryType must be 1 (Monthly) or 2 (Hourly).", field: "Contract.SalaryType")
        }
        if let category = body["Contract"]?["EmployeeCategory"], category != .null, ![0, 1].contains(category.numberValue?.int64Value) {
            return Self.badRequest(2000, "EmployeeCategory must be 0 or 1.", field: "Contract.EmployeeCategory")
        }
        if let start = body["Contract"]?["ContractStartDate"]?.stringValue, start.firstMatch(of: /^\d{4}-\d{2}-\d{2}/) == nil {
            return Self.badRequest(2000, "Format: YYYY-MM-DD.", field: "Contract.ContractStartDate")
        }
        return state.withLock { state in
            let id = UUID().uuidString.lowercased()
            var employee = members
            employee["Id"] = .string(id)
            employee["State"] = .number(JSONNumber(0))
            employee["HolidayAgreementNumber"] = .null
            state.employees.append(.object(employee))
            state.creates += 1
            return jsonResponse(201, JSONWriter.string(.object(employee)))
        }
    }

    /// Serves the identity server's token endpoint and the payroll API on one loopback port.
    public func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/connect/token") { request, _ in try await self.token(request) }
        router.get("/v2/employees") { request, _ in try await self.list(request) }
        router.post("/v2/employees") { request, _ in try await self.create(request) }
        return try await withLocalHTTPServer(router, label: "visma", body)
    }
}
