import Clocks
import Domain
import JSON
import Testing

@Suite("Job lifecycle: states, transitions, hold reasons")
struct JobLifecycleTests {
    static let transitions: [JobTransition] = [
        .claim, .skipAsDelivered, .succeed, .retryLater, .fail, .hold, .expire, .leaseLost(.rerun), .leaseLost(.hold), .giveBack,
        .release, .setAside, .operatorRetry, .operatorRetryWaiting, .resumeFlow, .resolve(delivered: true), .resolve(delivered: false), .cancel,
        .erase,
        .rerender(into: .pending), .rerender(into: .held), .forceResend,
    ]

    @Test(arguments: transitions)
    func everyTransitionIsAllowedFromItsSourcesOnlyAndEndsInItsTarget(_ transition: JobTransition) throws {
        #expect(!transition.sources.isEmpty)
        for state in JobState.allCases {
            if transition.sources.contains(state) {
                #expect(try state.after(transition) == transition.target)
            } else {
                #expect(throws: JobTransitionError.self) { try state.after(transition) }
            }
        }
    }

    @Test func theRulesAnOperatorReliesOn() throws {
        #expect(try JobState.running.after(.leaseLost(.rerun)) == .pending)
        #expect(try JobState.running.after(.leaseLost(.hold)) == .inDoubt)
        #expect(try JobState.inDoubt.after(.resolve(delivered: true)) == .done)
        #expect(try JobState.setAside.after(.operatorRetry) == .pending)
        // A running job finishes first: cancel waits; erasure does not.
        #expect(throws: JobTransitionError.self) { try JobState.running.after(.cancel) }
        #expect(try JobState.running.after(.erase) == .cancelled)
        // Terminal states stay terminal except by an operator's explicit word.
        #expect(throws: JobTransitionError.self) { try JobState.done.after(.operatorRetry) }
        #expect(throws: JobTransitionError.self) { try JobState.expired.after(.claim) }
        let error = JobTransitionError(jobID: 7, state: .running, transition: .cancel)
        #expect(error.description == "job 7 is running; this needs pending, held, in_doubt, dead, set_aside")
    }

    @Test func theEndOfAJobDecidesWhatHappensToTheJobsAfterIt() throws {
        #expect(DependencyOutcome.after(.done, jobID: 1, mapping: "p") == .release)
        #expect(DependencyOutcome.after(.skipped, jobID: 1, mapping: "p") == .release)
        #expect(DependencyOutcome.after(.cancelled, jobID: 1, mapping: "p") == .cancel)
        for ended in [JobState.dead, .expired, .setAside] {
            guard case .keepWaiting(let because)? = DependencyOutcome.after(ended, jobID: 4, mapping: "payroll") else {
                Issue.record("\(ended) does not keep the jobs after it waiting")
                continue
            }
            #expect(because.contains("payroll") && because.contains("jobs retry 4") && because.contains(ended.rawValue))
        }
        for open in [JobState.pending, .running, .held, .inDoubt] { #expect(DependencyOutcome.after(open, jobID: 1, mapping: "p") == nil) }
        #expect(try JobState.dead.after(.operatorRetryWaiting) == .held)
    }

    @Test func stateSetsAgreeWithTerminality() {
        #expect(JobState.terminal.allSatisfy { $0.isTerminal })
        #expect(JobState.open.allSatisfy { !$0.isTerminal })
        #expect(JobState.unfinished.allSatisfy { !$0.isTerminal })
        #expect(Set(JobState.open).union(JobState.terminal) == Set(JobState.allCases))
    }

    @Test func holdReasonsRoundTripThroughTheirStoredColumns() {
        let reasons: [HoldReason] = [
            .missingVariables(["PAYROLL_TOKEN", "PAYROLL_URL"]), .waitingFor(mapping: "payroll"), .noExecutor(kind: "sftp"),
            .mappingNotLoaded(mapping: "gone"), .configuration("the schedule never fires"), .crashedDuringAttempt,
            .storeFault("claiming it failed"),
        ]
        for reason in reasons {
            #expect(HoldReason(code: reason.code.rawValue, detail: reason.detail) == reason)
            #expect(!reason.description.isEmpty)
        }
        #expect(HoldReason(code: "no such code", detail: nil) == nil)
        #expect(HoldReason.missingVariables(["A", "B"]).description == "missing variables A, B")
    }

    @Test func completionsNameTheirTransition() throws {
        let completions: [JobCompletion] = [
            .done(capture: nil), .retry(at: Timestamp(seconds: 1), reason: "x"), .dead(reason: "x"), .held(.crashedDuringAttempt),
            .expired(reason: "x"),
        ]
        for completion in completions {
            #expect(try JobState.running.after(completion.transition) != .running)
        }
    }
}

@Suite("Effect ledger decisions")
struct EffectLedgerTests {
    @Test func aDeliveredKeySkipsSendsOrRunsTheAlternative() {
        #expect(EffectLedger.decide(jobID: 2, kind: "rest", deliveredBy: nil, policy: .skip) == .run)
        #expect(EffectLedger.decide(jobID: 2, kind: "rest", deliveredBy: 2, policy: .skip) == .run)
        #expect(EffectLedger.decide(jobID: 2, kind: "rest", deliveredBy: 1, policy: .skip) == .skip(deliveredBy: 1))
        #expect(EffectLedger.decide(jobID: 2, kind: "rest", deliveredBy: 1, policy: .send) == .run)
        #expect(
            EffectLedger.decide(
                jobID: 2, kind: "rest", deliveredBy: 1, policy: .alternative(mapping: "u", kind: "rest", payload: [1], mappingHash: nil))
                == .runAlternative(mapping: "u", kind: "rest", payload: [1], mappingHash: nil))
    }

    /// Regression: a CSV re-send before its period was exported was skipped, so
    /// the corrected row never reached the file.
    @Test func csvRowsAreNeverSkippedByTheLedger() {
        #expect(EffectLedger.decide(jobID: 2, kind: "csv", deliveredBy: 1, policy: .skip) == .run)
    }

    /// Regression: `on_repeat: <mapping>` where that mapping also matched the
    /// event created two jobs that collided on claim and stalled the daemon.
    @Test func aMappingNamedByAMatchingOnRepeatIsNotPlannedOnItsOwn() {
        #expect(EffectLedger.suppressedByRepeat(matching: [("create", "update"), ("update", nil)]) == ["update"])
        #expect(EffectLedger.suppressedByRepeat(matching: [("create", "update")]).isEmpty)
        #expect(EffectLedger.suppressedByRepeat(matching: [("self", "self")]).isEmpty)
    }
}
