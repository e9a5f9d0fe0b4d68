import Foundation
import Testing

@testable import BridgeApp

@Suite("Mapping test cases")
struct MappingTestRunnerTests {
    @Test func passingAndFailingCasesAreCountedAndAFailureShowsADiff() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-cases-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/tests", withIntermediateDirectories: true)
        try Data(
            #"""
            {"name": "hire", "when": {"event": "candidate/new"}, "effect_key": "{{ candidate.id }}",
             "rest": {"method": "POST", "url": "${BASE}/e", "body": {"id": "{{ candidate.id }}"}}}
            """#.utf8
        ).write(to: URL(fileURLWithPath: root + "/hire.json"))
        let event = #"{"event_type": "candidate", "action": "new", "data": {"candidate": {"id": "7"}}}"#
        let payload = #"{"method": "POST", "url": "http://x/e", "headers": {}, "query": {}, "body": {"id": "7"}, "idempotency_key": "hire:7"}"#
        let expected = #"[{"effect_key": "7", "payload": \#(payload)}]"#
        let wrong = #"[{"effect_key": "8", "payload": \#(payload)}]"#
        try Data(
            """
            {"mapping": "hire", "cases": [
              {"name": "renders", "event": \(event), "env": {"BASE": "http://x"}, "expect": \(expected)},
              {"name": "wrong key", "event": \(event), "env": {"BASE": "http://x"}, "expect": \(wrong)},
              {"name": "no match", "event": {"event_type": "job", "action": "new", "data": {}}, "expect_no_match": true}
            ]}
            """.utf8
        ).write(to: URL(fileURLWithPath: root + "/tests/hire.json"))
        var outcomes: [MappingTestRunner.Outcome] = []
        let counts = try MappingTestRunner(directory: root).run(diagnostics: { _ in }) { outcomes.append($0) }
        #expect(counts.passed == 2)
        #expect(counts.failed == 1)
        #expect(outcomes.map(\.label) == ["hire.json › renders", "hire.json › wrong key", "hire.json › no match"])
        guard case .failure(let failure) = outcomes[1].result else {
            Issue.record("the wrong key passed")
            return
        }
        #expect(failure.text.contains("- ") && failure.text.contains("+ "))
        #expect(failure.text.contains(#""8""#) && failure.text.contains(#""7""#))
    }

    @Test func aCaseGivesTheResponseThatAnAfterMappingReads() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-cases-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/tests", withIntermediateDirectories: true)
        try Data(
            #"""
            {"name": "hire", "when": {"event": "candidate/new"}, "effect_key": "{{ candidate.id }}",
             "rest": {"url": "http://x/e", "capture": {"employee_id": "{{ response.body.id }}"}}}
            """#.utf8
        ).write(to: URL(fileURLWithPath: root + "/hire.json"))
        try Data(
            #"""
            {"name": "card", "when": {"event": "candidate/new"}, "after": "hire", "effect_key": "{{ candidate.id }}",
             "rest": {"url": "http://x/card", "body": {"employee": "{{ response.employee_id | required }}"}}}
            """#.utf8
        ).write(to: URL(fileURLWithPath: root + "/card.json"))
        let event = #"{"event_type": "candidate", "action": "new", "data": {"candidate": {"id": "7"}}}"#
        let payload =
            #"{"method": "POST", "url": "http://x/card", "headers": {}, "query": {}, "body": {"employee": "E-1"}, "idempotency_key": "card:7"}"#
        try Data(
            """
            {"mapping": "card", "cases": [
              {"name": "sent with the capture", "event": \(event), "response": {"employee_id": "E-1"},
               "expect": [{"effect_key": "7", "payload": \(payload)}]},
              {"name": "no capture", "event": \(event), "response": {}, "expect_error": "response.employee_id"}
            ]}
            """.utf8
        ).write(to: URL(fileURLWithPath: root + "/tests/card.json"))
        var outcomes: [MappingTestRunner.Outcome] = []
        let counts = try MappingTestRunner(directory: root).run(diagnostics: { _ in }) { outcomes.append($0) }
        #expect(counts.passed == 2, "\(outcomes.map(\.result))")
        #expect(counts.failed == 0)
    }

    @Test func aLineDiffKeepsCommonLinesAndMarksTheRest() {
        #expect(Diff.lines(expected: "a\nb\nc", actual: "a\nx\nc") == "--- expected\n+++ actual\n  a\n+ x\n- b\n  c")
    }
}
