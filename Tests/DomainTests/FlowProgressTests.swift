import Clocks
import Domain
import JSON
import Testing

/// A JSON object literal as `JSONObject`.
func obj(_ value: JSONValue) -> JSONObject { value.objectValue ?? JSONObject() }

@Suite("Flow progress")
struct FlowProgressTests {
    let progress: FlowProgress = FlowProgress(
        steps: [
            FlowProgress.Step(name: "find_manager", outcome: .succeeded, status: 200, captures: obj(["manager_id": "M-7"]), at: 1),
            FlowProgress.Step(name: "find_person", outcome: .skipped, at: 2),
            FlowProgress.Step(name: "create_person", outcome: .alreadyDone, status: 409, captures: obj(["person_id": .null]), at: 3),
        ],
        next: "create_employee")

    @Test func theStoredFormRoundTrips() throws {
        let bytes = JSONWriter.bytes(progress.json)
        #expect(FlowProgress(stored: bytes) == progress)
        var failed = progress
        failed.failure = FlowProgress.Failure(step: "create_employee", reason: "HTTP 400", noticeSent: true)
        #expect(FlowProgress(json: failed.json) == failed)
        #expect(FlowProgress(stored: nil) == FlowProgress())
        #expect(FlowProgress(stored: Array("not json".utf8)) == FlowProgress(), "unreadable progress is a flow that has not started")
    }

    @Test func laterStepsSeeCapturesAndOutcomes() {
        #expect(progress.scopeValue["find_manager"]?["manager_id"] == "M-7")
        #expect(progress.scopeValue["create_person"]?["outcome"] == "already_done")
        #expect(progress.scopeValue["find_person"]?["outcome"] == "skipped")
        #expect(progress.hasEnded("find_person") && !progress.hasEnded("create_employee"))
        #expect(!progress.isFinished)
    }

    @Test func theOperatorEndsTheStepInFlightOrHasItSentAgain() throws {
        let resolved = try #require(
            progress.resolvingStepInFlight(delivered: true, captures: obj(["employee_id": "E-4"]), now: Timestamp(seconds: 9)))
        #expect(
            resolved.steps.last
                == FlowProgress.Step(name: "create_employee", outcome: .resolvedByOperator, captures: obj(["employee_id": "E-4"]), at: 9000))
        #expect(resolved.next == nil)
        #expect(progress.resolvingStepInFlight(delivered: false, captures: JSONObject(), now: Timestamp(seconds: 9)) == progress)
        #expect(FlowProgress().resolvingStepInFlight(delivered: true, captures: JSONObject(), now: Timestamp(seconds: 9)) == nil)
    }

    @Test func aRetryClearsTheFailureSoTheFailedStepRunsAgain() {
        var failed = progress
        failed.failure = FlowProgress.Failure(step: "create_employee", reason: "HTTP 400")
        #expect(failed.failureValue?["step"] == "create_employee")
        #expect(failed.failureValue?["steps_done"] == ["find_manager", "create_person"])
        #expect(failed.retried().failure == nil)
        #expect(failed.retried().steps == failed.steps)
    }

    @Test func theOperatorsSummarySaysWhatWasCreatedWithoutPersonalData() {
        var withEmail = progress
        withEmail.steps[0].captures["contact"] = "bruce@wayneenterprises.com"
        #expect(
            withEmail.summary.hasPrefix("find_manager done (manager_id M-7, contact [redacted]); find_person skipped; create_person already done"))
        #expect(withEmail.summary.hasSuffix("create_employee next"))
        #expect(progress.doneBefore == "find_manager (manager_id M-7), create_person")
        #expect(FlowProgress().doneBefore == nil)
    }

    @Test func resolvingAFailedFlowConcernsItsFailureNoticeNotItsSteps() throws {
        var failed = progress
        failed.failure = FlowProgress.Failure(step: "create_employee", reason: "HTTP 400")
        let resolved = try #require(failed.resolvingStepInFlight(delivered: true, captures: JSONObject(), now: Timestamp(seconds: 9)))
        #expect(resolved.failure?.noticeSent == true)
        #expect(resolved.steps == failed.steps, "the failed step is not marked delivered")
        #expect(failed.resolvingStepInFlight(delivered: false, captures: JSONObject(), now: Timestamp(seconds: 9)) == failed)
    }

    @Test func retentionKeepsTheStepsButNotTheirCapturesAndAForcedReplayStartsOverWithNewKeys() {
        let kept = progress.withoutCaptures()
        #expect(kept.steps.map(\.name) == progress.steps.map(\.name))
        #expect(kept.steps.allSatisfy { $0.captures.isEmpty })
        let forced = FlowProgress.forcedResend(at: Timestamp(milliseconds: 42))
        #expect(forced.steps.isEmpty && forced.keySuffix == ":replay-42")
        #expect(FlowProgress(json: forced.json) == forced)
    }
}
