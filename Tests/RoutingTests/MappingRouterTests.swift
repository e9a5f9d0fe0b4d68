import JSON
import Mapping
import Testing

@testable import Clocks
@testable import Domain
@testable import Routing

@Suite("Mapping router")
struct MappingRouterTests {
    func mapping(_ text: String) throws -> MappingFile {
        let name = (try? JSONParser.parse(text))?["name"]?.stringValue ?? "x"
        let (mapping, diagnostics) = MappingCompiler.compile(file: "\(name).json", bytes: Array(text.utf8))
        guard let mapping else { throw RouterTestError(text: "\(diagnostics)") }
        return mapping
    }

    struct RouterTestError: Error { var text: String }

    let signup = Array(
        #"{"event_type":"company","action":"signup","data":{"company_id":"c1","internal_id":23,"company_name":"Wayne","settings":{"cost_centre":"CC-9"}}}"#
            .utf8)
    let candidate = Array(
        #"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"p1","status":{"group":20}}}}"#.utf8)

    @Test func companySnapshotsAreInScopeForLaterEvents() throws {
        let m = try mapping(
            #"{"name": "x", "when": {"event": "candidate/new"}, "rest": {"url": "https://p.example/x", "body": {"cc": "{{ companies[company.id].settings.cost_centre }}", "name": "{{ companies['c1'].name }}"}}}"#
        )
        let router = MappingRouter(registry: MappingRegistry(MappingSet(mappings: [m], variables: VariableSource(environment: [:]))))
        _ = router.route(try WebhookEnvelope.read(signup), body: signup, receivedAt: Timestamp(seconds: 1))
        let jobs = router.route(try WebhookEnvelope.read(candidate), body: candidate, receivedAt: Timestamp(seconds: 2))
        #expect(jobs.first?.payload["body"] == ["cc": "CC-9", "name": "Wayne"])
    }

    @Test func policiesStatesAndAlternatives() throws {
        let payroll = try mapping(
            #"{"name": "x", "when": {"event": "candidate/new"}, "on_repeat": "y", "rest": {"url": "https://p.example/x", "honours_idempotency_key": true}}"#
        )
        let update = try mapping(
            #"{"name": "y", "when": {"event": "candidate/new"}, "rest": {"method": "PUT", "url": "https://p.example/x/{{ candidate.id }}"}}"#)
        let broken = try mapping(
            #"{"name": "z", "when": {"event": "candidate/new"}, "rest": {"url": "https://p.example/x", "body": {"a": "{{ candidate.nope | required }}"}}}"#
        )
        let held = try mapping(#"{"name": "w", "when": {"event": "candidate/new"}, "rest": {"url": "${NOT_SET_ANYWHERE}/x"}}"#)
        let set = MappingSet(mappings: [payroll, update, broken, held], variables: VariableSource(environment: [:]))
        let jobs = MappingRouter(mappings: set).route(try WebhookEnvelope.read(candidate), body: candidate, receivedAt: Timestamp(seconds: 2))
        let byName = Dictionary(uniqueKeysWithValues: jobs.map { ($0.mapping, $0) })
        #expect(byName["x"]?.crashPolicy == .rerun)
        // y is x's repeat and matches too: it runs only as x's repeat, never on its own.
        #expect(byName["y"] == nil)
        if case .alternative(let name, let kind, let payload, _)? = byName["x"]?.onRepeat {
            #expect(name == "y")
            #expect(kind == "rest")
            #expect(payload["url"] == "https://p.example/x/p1")
            #expect(payload["idempotency_key"]?.stringValue?.hasPrefix("y:") == true, "a repeat's key is its own mapping's")
        } else {
            Issue.record("expected the alternative mapping")
        }
        #expect(byName["z"]?.initialState == .dead)
        #expect(byName["z"]?.reason == "mapping error: z: rest.body.a: required: 'candidate.nope' is missing or empty")
        #expect(byName["w"]?.initialState == .held)
        #expect(byName["w"]?.holdReason == .missingVariables(["NOT_SET_ANYWHERE"]))
    }

    @Test func anArchiveJobWhoseURLHadExpiredBeforeTheWebhookIsCreatedExpired() throws {
        let archive = try mapping(
            #"{"name": "a", "when": {"event": "candidate/new"}, "archive": {"files": {"cv": "{{ candidate.files.cv }}", "cover_letter": "{{ candidate.files.cover_letter }}"}, "allowed_hosts": ["files.example"]}}"#
        )
        let body = Array(
            #"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"p1","files":{"cv":"https://files.example/cv.pdf?Expires=1000&Signature=s","cover_letter":"https://files.example/cl.pdf?Expires=3000&Signature=s"}}}}"#
                .utf8)
        let router = MappingRouter(mappings: MappingSet(mappings: [archive], variables: VariableSource(environment: [:])))
        // Received at 2000 s: the CV's URL expired at 1000 s, the cover letter's expires at 3000 s.
        let jobs = router.route(try WebhookEnvelope.read(body), body: body, receivedAt: Timestamp(seconds: 2000))
        let byItem = Dictionary(uniqueKeysWithValues: jobs.map { ($0.item, $0) })
        #expect(byItem["cv"]?.initialState == .expired)
        #expect(byItem["cv"]?.reason == "the signed URL expired at 1970-01-01T00:16:40.000Z before the webhook arrived (not requested)")
        #expect(byItem["cv"]?.deadline == Timestamp(seconds: 1000))
        #expect(byItem["cover_letter"]?.initialState == .pending)
        #expect(byItem["cover_letter"]?.reason == nil)
        #expect(byItem["cover_letter"]?.deadline == Timestamp(seconds: 3000))
        // Exactly at the deadline counts as expired (the executor's rule: now >= deadline).
        let atDeadline = router.route(try WebhookEnvelope.read(body), body: body, receivedAt: Timestamp(seconds: 3000))
        #expect(atDeadline.allSatisfy { $0.initialState == .expired })
    }
}
