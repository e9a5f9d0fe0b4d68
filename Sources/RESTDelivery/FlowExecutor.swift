import Clocks
import CurlClient
import Domain
import Foundation
import JSON
import JobEngine
import Logging
import Mapping
import Synchronization

/// Runs `flow` jobs: a hire handed to a downstream as several requests (find
/// the manager, create the person, then the employee with both ids).
///
/// Each step is rendered when it is sent, from the event and what the ended
/// steps captured, with the mapping version the flow was planned with (kept
/// by content hash in the store across reloads). Before a step is sent the
/// job's checkpoint names it and carries its crash policy; after it answers,
/// its captures are committed before the next step goes out. So a crash
/// resumes at the step in flight: re-sent when that is safe (a read, or a
/// downstream that honours the idempotency key), else the flow is `in_doubt`
/// naming the step; a finished step is never sent again.
public struct FlowExecutor: JobExecutor {
    /// Claims the jobs of `flow` mappings.
    public let kind = "flow"
    let registry: MappingRegistry
    let store: any RunningJobStore
    let clock: any WallClock
    let sender: RestSender
    let versions = FlowVersions()

    /// Variables come from the registry's current set; mapping versions that
    /// are no longer loaded come from the store.
    public init(
        registry: MappingRegistry, store: any RunningJobStore, client: CurlClient, clock: any WallClock,
        tls: RestExecutor.TLSSettings = RestExecutor.TLSSettings(), tokens: OAuth2Tokens = OAuth2Tokens(), downstreams: Downstreams = Downstreams()
    ) {
        self.registry = registry
        self.store = store
        self.clock = clock
        self.sender = RestSender(client: client, clock: clock, tls: tls, tokens: tokens, downstreams: downstreams)
    }

    /// The flow's `retry` (all its steps share one job and one retry window).
    public func retryRules(for job: ClaimedJob) -> RetryRules {
        guard let mapping = versions.cached(job.mappingHash) ?? registry.current.mapping(named: job.mapping), case .flow(let flow) = mapping.target
        else { return .standard }
        return RetryRules(settings: flow.retry)
    }

    /// One attempt: the steps from the one in flight to the end, or to the
    /// first that cannot go on now.
    public func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome {
        guard let mapping = await version(of: job, logger: logger) else { return .held(.mappingNotLoaded(mapping: job.mapping)) }
        guard case .flow(let flow) = mapping.target else { return .permanent(reason: "mapping \(mapping.name) is not a flow") }
        guard let event = RestExecutor.event(of: job, now: clock.now()) else {
            return .permanent(reason: "the event body is no longer stored (retention): cannot render \(mapping.name)")
        }
        var run = FlowRun(
            executor: self, job: job, mapping: mapping, flow: flow, event: event, progress: FlowProgress(stored: job.flowProgress),
            storedPolicy: job.crashPolicy, logger: logger)
        return await run.go()
    }

    /// The version the job was planned with: the loaded one if it is the
    /// same, else the one the store kept (compiled once per process).
    func version(of job: ClaimedJob, logger: Logger) async -> MappingFile? {
        if let loaded = registry.current.mapping(named: job.mapping), loaded.contentHash == job.mappingHash || job.mappingHash.isEmpty {
            return loaded
        }
        if let cached = versions.cached(job.mappingHash) { return cached }
        guard let source = try? await store.mappingSource(contentHash: job.mappingHash) else { return nil }
        let (compiled, _) = MappingCompiler.compile(file: "\(job.mapping).json", bytes: source)
        guard let compiled else {
            logger.error("a stored flow version does not compile", metadata: ["mapping": "\(job.mapping)"])
            return nil
        }
        versions.store(compiled)
        return compiled
    }

    /// Sends one rendered step (`RestSender`: variables, credentials, TLS).
    func send(_ payload: JSONValue, step: FlowStep, variables: VariableSource, companyID: String?) async -> Result<CurlResponse, RestSender.Problem> {
        await sender.send(payload, rest: step.request, variables: variables, companyID: companyID)
    }
}

/// The compiled mapping versions of flows planned before a reload.
final class FlowVersions: Sendable {
    let byHash = Mutex<[String: MappingFile]>([:])

    func cached(_ hash: String) -> MappingFile? { byHash.withLock { $0[hash] } }

    func store(_ mapping: MappingFile) { byHash.withLock { $0[mapping.contentHash] = mapping } }
}

/// One attempt of one flow: its progress and checkpoints.
struct FlowRun {
    let executor: FlowExecutor
    let job: ClaimedJob
    let mapping: MappingFile
    let flow: FlowTarget
    let event: MappingEvent
    var progress: FlowProgress
    var storedPolicy: CrashPolicy
    let logger: Logger

    var now: String { MappingClock.iso8601(milliseconds: executor.clock.now().milliseconds) }

    /// How a checkpoint went.
    enum Checkpoint {
        /// Committed.
        case stored
        /// Another attempt owns the job now: this one must stop and send nothing.
        case leaseLost
        /// The store refused the write, several times.
        case failed(String)
    }

    /// Commits the progress and the policy of what is sent next. A store
    /// error is retried with backoff (five tries, about six seconds): the
    /// write is what keeps a finished step from being sent again.
    mutating func checkpoint(policy: CrashPolicy) async -> Checkpoint {
        var lastError = ""
        for attempt in 0..<5 {
            do {
                guard
                    try await executor.store.checkpointFlow(
                        jobID: job.id, owner: job.leaseOwner, attempt: job.attempt, progress: progress, crashPolicy: policy,
                        now: executor.clock.now())
                else { return .leaseLost }
                storedPolicy = policy
                return .stored
            } catch {
                lastError = Redactor.redactPatterns("\(error)")
                logger.error("a flow checkpoint failed", metadata: ["error": "\(lastError)", "try": "\(attempt + 1)"])
                try? await executor.clock.sleep(for: .milliseconds(200 << attempt))
            }
        }
        return .failed(lastError)
    }

    /// What an attempt does when the checkpoint after `step` answered could
    /// not be stored: a step that is safe to resend is tried again later; an
    /// unsafe one must never go out again on its own, so the job ends with
    /// a reason that tells the operator to resolve it by hand.
    func unrecorded(_ step: FlowStep, status: Int, _ result: Checkpoint) -> AttemptOutcome {
        switch result {
        case .stored: return .succeeded(capture: nil)
        case .leaseLost: return .transient(reason: "lease lost after step \(step.name)", retryAfter: nil)
        case .failed(let error):
            if step.isSafeToResend { return .transient(reason: "step \(step.name): its result could not be stored: \(error)", retryAfter: nil) }
            return .permanent(
                reason: "step \(step.name) answered HTTP \(status) but its result could not be stored (\(error)); it is not sent again: "
                    + "check the downstream, then `jobs retry` only if it did not take effect")
        }
    }

    /// The next step to send, recording skipped ones; `nil` at the end.
    mutating func advance() -> Result<FlowStep?, EvaluationError> {
        guard !progress.isFinished else { return .success(nil) }
        for step in flow.steps where !progress.hasEnded(step.name) {
            switch mapping.flowStepApplies(step, event: event, steps: progress.scopeValue, now: now) {
            case .failure(let error): return .failure(error)
            case .success(true): return .success(step)
            case .success(false):
                progress.steps.append(.init(name: step.name, outcome: .skipped, at: executor.clock.now().milliseconds))
            }
        }
        return .success(nil)
    }

    static func policy(_ step: FlowStep) -> CrashPolicy { step.isSafeToResend ? .rerun : .hold }

    mutating func go() async -> AttemptOutcome {
        if progress.failure != nil { return await sendFailureNotice() }
        var current: FlowStep?
        switch advance() {
        case .success(let step): current = step
        case .failure(let error): return await failed(step: progress.next ?? "flow", reason: "\(mapping.name): \(error.message)")
        }
        if let step = current, progress.next != step.name || storedPolicy != FlowRun.policy(step) {
            progress.next = step.name
            switch await checkpoint(policy: FlowRun.policy(step)) {
            case .stored: break
            case .leaseLost: return .transient(reason: "lease lost before step \(step.name)", retryAfter: nil)
            case .failed(let error):
                return .transient(reason: "step \(step.name) not sent: the flow's progress could not be stored: \(error)", retryAfter: nil)
            }
        }
        let variables = executor.registry.current.variables
        while let step = current {
            let payload: JSONValue
            switch mapping.renderFlowStep(step, event: event, steps: progress.scopeValue, keySuffix: progress.keySuffix, now: now) {
            case .success(let rendered): payload = rendered
            case .failure(let error): return await failed(step: step.name, reason: "\(mapping.name): \(error.message)")
            }
            let response: CurlResponse
            switch await executor.send(payload, step: step, variables: variables, companyID: job.companyID) {
            case .success(let answer): response = answer
            // Nothing was sent: the step stays next, and the attempt is not counted.
            case .failure(.postponed(let until, let reason)): return .postponed(until: until, reason: "step \(step.name): \(reason)")
            case .failure(.held(let reason)): return .held(reason)
            case .failure(.permanent(let message)): return await failed(step: step.name, reason: "step \(step.name): \(message)")
            case .failure(.transient(let message)): return await transient(step: step.name, reason: "step \(step.name): \(message)", retryAfter: nil)
            }
            logger.info("flow step answered", metadata: ["step": "\(step.name)", "status": "\(response.status)"])
            let answer = RestTarget.responseValue(status: response.status, headers: response.headers, body: response.body)
            let (outcome, rule) = DownstreamAnswers.rest(
                answer, status: response.status, target: step.request, scope: mapping.flowAnswerScope(event: event, now: now))
            let because = rule.map { " (outcomes: \($0))" } ?? ""
            switch outcome {
            case .retry:
                let after = response.header("Retry-After").flatMap { RetryAfter.delay($0, now: executor.clock.now()) }
                return await transient(
                    step: step.name, reason: "step \(step.name): HTTP \(response.status)\(because): \(RestRequestBuilder.excerpt(response.body))",
                    retryAfter: after)
            case .fail:
                return await failed(
                    step: step.name,
                    reason: "step \(step.name) failed: HTTP \(response.status)\(because): \(RestRequestBuilder.excerpt(response.body))")
            case .success, .alreadyDone, .finish:
                let ended = FlowProgress.StepOutcome(answered: outcome) ?? .succeeded
                progress.steps.append(
                    .init(
                        name: step.name, outcome: ended, status: response.status,
                        captures: mapping.flowCaptures(step, response: answer, event: event, now: now),
                        at: executor.clock.now().milliseconds))
                var next: FlowStep?
                var conditionError: EvaluationError?
                switch advance() {
                case .success(let found): next = found
                case .failure(let error): conditionError = error
                }
                progress.next = next?.name
                // Nothing in flight once the flow is through: a crash before `done` is recorded reruns harmlessly.
                let recorded = await checkpoint(policy: next.map(FlowRun.policy) ?? .rerun)
                if case .stored = recorded {} else { return unrecorded(step, status: response.status, recorded) }
                if let conditionError { return await failed(step: "flow", reason: "\(mapping.name): \(conditionError.message)") }
                current = next
            }
        }
        return .succeeded(capture: progress.scopeValue)
    }

    /// A transient failure; on the attempt that uses up the flow's retries it
    /// is the flow's failure (and `on_failure` is sent).
    mutating func transient(step: String, reason: String, retryAfter: Duration?) async -> AttemptOutcome {
        let outcome = AttemptOutcome.transient(reason: reason, retryAfter: retryAfter)
        let decided = RetryDecision.decide(
            outcome, rules: executor.retryRules(for: job), attempt: job.attempt, firstAttemptAt: job.firstAttemptAt ?? executor.clock.now(),
            now: executor.clock.now(), jitter: 0)
        guard case .dead(let final) = decided, flow.onFailure != nil else { return outcome }
        return await failed(step: step, reason: final)
    }

    /// The flow ends failed: the reason says what it had done before, and
    /// `on_failure` (if any) is sent once.
    mutating func failed(step: String, reason: String) async -> AttemptOutcome {
        // Masked by value here (not only by the runner): the reason is stored
        // in the progress and `on_failure` may send it on.
        let masked = Redactor(payload: job.payload).redact(reason)
        let full = progress.doneBefore.map { "\(masked); done before: \($0)" } ?? "\(masked); nothing was done before it"
        progress.failure = FlowProgress.Failure(step: step, reason: full)
        // Recorded whatever comes next, so a retry resumes at the failed step;
        // from here the notice is what may be in flight.
        let policy = flow.onFailure.map(FlowRun.policy) ?? .rerun
        if case .failed(let error) = await checkpoint(policy: policy) {
            return .permanent(reason: "\(full); the failure could not be recorded (\(error)): `jobs show` may show older progress")
        }
        guard flow.onFailure != nil else { return .permanent(reason: full) }
        return await sendFailureNotice()
    }

    /// Sends `on_failure` once, then ends the flow with its failure.
    mutating func sendFailureNotice() async -> AttemptOutcome {
        guard let failure = progress.failure else { return .permanent(reason: "flow failed") }
        guard let notice = flow.onFailure, !failure.noticeSent else { return .permanent(reason: failure.reason) }
        let payload: JSONValue
        switch mapping.renderFlowStep(
            notice, event: event, steps: progress.scopeValue, failure: progress.failureValue, keySuffix: progress.keySuffix, now: now)
        {
        case .success(let rendered): payload = rendered
        case .failure(let error): return .permanent(reason: "\(failure.reason); on_failure not sent: \(error.message)")
        }
        switch await executor.send(payload, step: notice, variables: executor.registry.current.variables, companyID: job.companyID) {
        case .failure(.postponed(let until, let reason)): return .postponed(until: until, reason: "on_failure: \(reason)")
        case .success(let response):
            let answer = RestTarget.responseValue(status: response.status, headers: response.headers, body: response.body)
            switch DownstreamAnswers.rest(answer, status: response.status, target: notice.request).outcome {
            case .success, .alreadyDone, .finish:
                progress.failure?.noticeSent = true
                _ = await checkpoint(policy: .rerun)
                return .permanent(reason: "\(failure.reason); on_failure sent")
            case .retry:
                return .transient(reason: "\(failure.reason); on_failure: HTTP \(response.status), retried", retryAfter: nil)
            case .fail:
                return .permanent(
                    reason: "\(failure.reason); on_failure failed: HTTP \(response.status): \(RestRequestBuilder.excerpt(response.body))")
            }
        case .failure(.transient(let message)):
            return .transient(reason: "\(failure.reason); on_failure: \(message), retried", retryAfter: nil)
        case .failure(.held(let reason)): return .held(reason)
        case .failure(.permanent(let message)): return .permanent(reason: "\(failure.reason); on_failure not sent: \(message)")
        }
    }
}
