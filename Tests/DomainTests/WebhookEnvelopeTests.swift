import JSON
import Testing

@testable import Domain

@Suite("Envelope and event kinds")
struct EnvelopeTests {
    @Test func documentedPairsAndTheCreateSynonym() {
        #expect(EventKind(type: "company", action: "signup") == .companySignup)
        #expect(EventKind(type: "job", action: "new") == .jobNew)
        #expect(EventKind(type: "job", action: "create") == .jobNew)
        #expect(EventKind(type: "job", action: "update") == .jobUpdate)
        #expect(EventKind(type: "candidate", action: "new") == .candidateNew)
        #expect(EventKind(type: "application", action: "created") == .unknown(type: "application", action: "created"))
        #expect(!EventKind(type: "candidate", action: "update").isDocumented)
        #expect(EventKind(type: "job", action: "create").description == "job/new")
    }

    @Test func readsIdsOfEachKind() throws {
        let signup = try WebhookEnvelope.read(Array(#"{"event_type":"company","action":"signup","data":{"company_id":"c1","internal_id":23}}"#.utf8))
        #expect(signup.companyID == "c1")
        #expect(signup.subjectID == "c1")
        let job = try WebhookEnvelope.read(Array(#"{"event_type":"job","action":"update","data":{"company":{"id":"c1"},"job":{"id":"j1"}}}"#.utf8))
        #expect(job.subjectID == "j1")
        let candidate = try WebhookEnvelope.read(
            Array(#"{"data":{"candidate":{"id":"p1"},"company":{"id":7}},"action":"new","event_type":"candidate",}"#.utf8))
        #expect(candidate.subjectID == "p1")
        #expect(candidate.companyID == "7")
        #expect(candidate.lenient)
    }

    @Test func refusesBadEnvelopesPrecisely() {
        func error(_ text: String) -> EnvelopeError? {
            do {
                _ = try WebhookEnvelope.read(Array(text.utf8))
                return nil
            } catch {
                return error
            }
        }
        #expect(error(#"{"action":"new","data":{}}"#) == .missingField("event_type"))
        #expect(error(#"{"event_type":"","action":"new","data":{}}"#) == .wrongType("event_type", expected: "a non-empty string"))
        #expect(error(#"{"event_type":"job","data":{}}"#) == .missingField("action"))
        #expect(error(#"{"event_type":"job","action":"new"}"#) == .missingField("data"))
        #expect(error(#"{"event_type":"job","action":"new","data":null}"#) == .wrongType("data", expected: "an object"))
        if case .malformedJSON(let json) = error("{\"event_type\":") {
            #expect(json.kind == .unexpectedEnd(expected: "a value"))
        } else {
            Issue.record("expected malformed JSON")
        }
    }

    @Test func companySnapshotFromSignup() throws {
        let data = try JSONParser.parse(#"{"company_id":"c1","internal_id":23,"company_name":"Wayne","settings":{"token":"t"}}"#)
        let snapshot = try #require(CompanySnapshot(signupData: data))
        #expect(snapshot.internalID == "23")
        #expect(snapshot.name == "Wayne")
        #expect(snapshot.settings == ["token": "t"])
        #expect(CompanySnapshot(signupData: ["company_id": ""]) == nil)
    }
}
