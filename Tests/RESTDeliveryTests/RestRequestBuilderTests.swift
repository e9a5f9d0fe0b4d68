import JSON
import Mapping
import Testing

@testable import Clocks
@testable import RESTDelivery

@Suite("REST request building")
struct RestRequestBuilderTests {
    func target(_ json: String) throws -> RestTarget {
        let text = #"{"name": "m", "when": {"event": "job/new"}, "rest": \#(json)}"#
        guard case .rest(let rest)? = MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).0?.target else {
            throw Failure()
        }
        return rest
    }

    struct Failure: Error {}

    @Test func variablesAreInjectedAtSendTimeAndQueriesEncoded() throws {
        let rest = try target(#"{"url": "${BASE}/e", "query": {"q": "a b&c"}, "auth": {"bearer": "${TOKEN}"}}"#)
        let payload: JSONValue = [
            "method": "POST", "url": "${BASE}/e", "headers": ["X-A": "1"], "query": ["q": "å b&c"], "body": ["k": 1], "idempotency_key": "c:p",
        ]
        let variables = VariableSource(environment: ["BASE": "https://p.example", "TOKEN": "t"])
        guard case .success(let request) = RestRequestBuilder.build(payload, rest: rest, variables: variables, timeoutMilliseconds: 1000) else {
            Issue.record("not built")
            return
        }
        #expect(request.url == "https://p.example/e?q=%C3%A5%20b%26c")
        #expect(request.headers.contains { $0.name == "Authorization" && $0.value == "Bearer t" })
        #expect(request.headers.contains { $0.name == "Idempotency-Key" && $0.value == "c:p" })
        #expect(request.headers.contains { $0.name == "Content-Type" && $0.value == "application/json" })
        #expect(request.body == Array(#"{"k":1}"#.utf8))
        let missing = RestRequestBuilder.build(payload, rest: rest, variables: VariableSource(environment: [:]), timeoutMilliseconds: 1000)
        #expect(missing.problem == .missingVariables(["BASE", "TOKEN"]))
    }

    /// Regression: a query key written `$$filter` (OData's `$filter`, Visma's
    /// lookup) was sent as `%24%24filter`, and the server ignored the filter.
    @Test func aDollarInAQueryKeyIsSentOnce() throws {
        let rest = try target(#"{"url": "https://p.example/e", "query": {"$$filter": "Id eq '1'"}}"#)
        let payload: JSONValue = ["method": "GET", "url": "https://p.example/e", "query": ["$$filter": "Id eq '1'"]]
        guard
            case .success(let request) = RestRequestBuilder.build(
                payload, rest: rest, variables: VariableSource(environment: [:]), timeoutMilliseconds: 1000)
        else {
            Issue.record("not built")
            return
        }
        #expect(request.url == "https://p.example/e?%24filter=Id%20eq%20%271%27")
    }

    @Test func variablesInTheBodyAreFilledButPlaceholdersInEventDataAreSentAsWritten() throws {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"}, "effect_key": "{{ candidate.id }}",
             "rest": {"url": "${BASE}/e/{{ candidate.id }}", "headers": {"X-Name": "{{ candidate.first_name }}"},
                      "body": {"company": "${COMPANY_CODE}", "name": "{{ candidate.first_name }}", "note": "$5 ${COMPANY_CODE}"}}}
            """#
        let mapping = try #require(MappingCompiler.compile(file: "m.json", bytes: Array(text.utf8)).0)
        guard case .rest(let rest) = mapping.target else { throw Failure() }
        let data: JSONValue = ["candidate": ["id": "$${TOKEN}", "first_name": "${TOKEN}"]]
        let event = MappingEvent(type: "candidate", action: "new", data: data, receivedAt: "2026-01-01T00:00:00.000Z", entityKey: "k")
        guard case .planned(let jobs) = mapping.plan(event, now: "2026-01-01T00:00:00.000Z"), let payload = jobs.first?.payload else {
            throw Failure()
        }
        let variables = VariableSource(environment: ["BASE": "https://p.example", "TOKEN": "t0ps3cret", "COMPANY_CODE": "ACME"])
        guard case .success(let request) = RestRequestBuilder.build(payload, rest: rest, variables: variables, timeoutMilliseconds: 1000) else {
            throw Failure()
        }
        let body = try JSONParser.parse(request.body ?? [])
        #expect(body == ["company": "ACME", "name": "${TOKEN}", "note": "$5 ACME"])
        #expect(request.headers.contains { $0.name == "X-Name" && $0.value == "${TOKEN}" })
        #expect(request.url == "https://p.example/e/$${TOKEN}")
        #expect(!request.url.contains("t0ps3cret"))
        #expect(!(request.headers.contains { $0.value.contains("t0ps3cret") }))
    }

    @Test func onlyHTTPAfterInjection() throws {
        let rest = try target(#"{"url": "${BASE}/e"}"#)
        let payload: JSONValue = ["method": "GET", "url": "${BASE}/e"]
        let result = RestRequestBuilder.build(
            payload, rest: rest, variables: VariableSource(environment: ["BASE": "file:///etc"]), timeoutMilliseconds: 1000)
        #expect(result.problem == .invalid("url must be http or https after variables are injected"))
    }

    @Test func errorExcerptsAreRedacted() {
        let body = Array(#"{"error": "iban SE6281323143611896423859 for bruce@wayne.com rejected", "code": 42}"#.utf8)
        let excerpt = RestRequestBuilder.excerpt(body)
        #expect(!excerpt.contains("SE62"))
        #expect(!excerpt.contains("bruce@"))
        #expect(excerpt.contains("rejected"))
        #expect(excerpt.contains("42"))
    }
}

extension Result where Failure == RestRequestBuilder.Problem {
    var problem: RestRequestBuilder.Problem? {
        if case .failure(let problem) = self { return problem }
        return nil
    }
}
