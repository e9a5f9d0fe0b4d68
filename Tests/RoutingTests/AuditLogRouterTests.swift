import JSON
import Testing

@testable import Clocks
@testable import Domain
@testable import Routing

@Suite("Audit-log router")
struct AuditLogRouterTests {
    @Test func oneJobPerDocumentedEventKeyedByEntity() throws {
        let envelope = try WebhookEnvelope.read(
            Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c"},"candidate":{"id":"p"}}}"#.utf8))
        let jobs = AuditLogRouter().route(envelope, body: [], receivedAt: Timestamp(seconds: 0))
        #expect(jobs.count == 1)
        #expect(jobs.first?.effectKey == "candidate/new:c:p")
        #expect(jobs.first?.crashPolicy == .rerun)
        let unknown = try WebhookEnvelope.read(Array(#"{"event_type":"x","action":"y","data":{}}"#.utf8))
        #expect(AuditLogRouter().route(unknown, body: [], receivedAt: Timestamp(seconds: 0)).isEmpty)
    }
}
