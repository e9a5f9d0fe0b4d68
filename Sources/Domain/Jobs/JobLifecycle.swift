/// The life of a job. Terminal states: `done`, `dead`, `expired`, `skipped`, `cancelled`.
///
/// Which state may follow which is decided here, by `JobState.after(_:)`, and
/// nowhere else: the store asks this type before it writes a state, and
/// renders the sets it needs in its queries from `JobTransition.sources` and
/// the state lists below (`unfinished`, `gauged`, `terminal`).
public enum JobState: String, Sendable, CaseIterable, Codable {
    /// Waiting for its due time (first attempt or retry).
    case pending
    /// Claimed by a runner under a lease.
    case running
    /// The effect happened; recorded in the effect ledger in the same write.
    case done
    /// Failed for good (permanent error or retries exhausted); `jobs retry` revives it.
    case dead
    /// Waiting for something named by its `HoldReason` (a variable, another job, an executor).
    case held
    /// A runner died while the effect may have reached the downstream, and the
    /// downstream does not honour idempotency keys: an operator decides.
    case inDoubt = "in_doubt"
    /// The effect key was already delivered by another job (see `skippedFor`).
    case skipped
    /// By an operator (`jobs cancel`) or by erasure; `jobs retry` revives it.
    case cancelled
    /// Its deadline passed before the effect could happen (e.g. a signed file
    /// URL expired before the archive got the file): counted and alerted, never dropped silently.
    case expired
    /// The bridge could not claim or record this job (a storage fault that
    /// concerns this job only): taken out of the queue so every other job
    /// keeps flowing; an operator sees the reason and retries or cancels it.
    case setAside = "set_aside"

    /// Nothing moves the job on its own any more: only operator commands
    /// (`jobs retry`, `jobs cancel`, `replay`) leave some of these states. Retention may purge their payloads.
    public var isTerminal: Bool {
        switch self {
        case .done, .dead, .skipped, .cancelled, .expired: return true
        case .pending, .running, .held, .inDoubt, .setAside: return false
        }
    }

    /// Unfinished jobs: a later job of the same (mapping, effect key) waits for
    /// them, so one entity's effects happen in order.
    public static let unfinished: [JobState] = [.pending, .running, .held, .inDoubt]

    /// States the per-second gauges count (the unbounded terminal states are not).
    public static let gauged: [JobState] = [.pending, .running, .held, .inDoubt, .dead, .expired, .setAside]

    /// States whose jobs still wait to run or for a decision (erasure cancels them).
    public static let open: [JobState] = [.pending, .running, .held, .inDoubt, .setAside]

    /// Finished for good (retention may purge their payloads).
    public static let terminal: [JobState] = allCases.filter(\.isTerminal)
}

/// What happens to a job. Each transition names the states it may start from;
/// anything else is a `JobTransitionError`, never a silent write.
public enum JobTransition: Sendable, Hashable {
    /// A runner takes a due job under a lease.
    case claim
    /// The effect ledger says the effect was already delivered.
    case skipAsDelivered
    /// The attempt's effect happened.
    case succeed
    /// The attempt failed and will be tried again.
    case retryLater
    /// Failed for good.
    case fail
    /// Waits for what its hold reason names.
    case hold
    /// Its deadline passed.
    case expire
    /// The runner's lease ran out (it died): re-run or park by the crash policy.
    case leaseLost(CrashPolicy)
    /// A graceful stop gives an unfinished attempt back.
    case giveBack
    /// What a held job waited for is there.
    case release
    /// Its claim or completion keeps failing: out of the queue, for an operator.
    case setAside
    /// `jobs retry`.
    case operatorRetry
    /// `jobs retry` of a job of an `after` mapping whose dependency has not
    /// delivered its effect: it goes (back) to waiting for it, never past it.
    case operatorRetryWaiting
    /// `jobs resolve --delivered` / `--not-delivered` of an `in_doubt` job.
    case resolve(delivered: Bool)
    /// `jobs resolve` of an `in_doubt` flow: the step in flight is ended (or
    /// sent again) and the flow goes on from there.
    case resumeFlow
    /// `jobs cancel`.
    case cancel
    /// Erasure of a candidate: every open job is cancelled, a running one too
    /// (its attempt's outcome then finds it no longer running and is dropped).
    case erase
    /// `replay` renders a failed or cancelled job again, into its new initial state.
    case rerender(into: JobState)
    /// `replay --force` sends a delivered job again.
    case forceResend

    /// The states this transition may start from.
    public var sources: [JobState] {
        switch self {
        case .claim, .skipAsDelivered: return [.pending]
        case .succeed, .retryLater, .fail, .leaseLost, .giveBack: return [.running]
        case .hold, .expire: return [.running, .pending]
        case .release: return [.held]
        case .setAside: return [.pending, .running]
        case .operatorRetry, .operatorRetryWaiting: return [.dead, .held, .cancelled, .inDoubt, .setAside]
        case .resolve, .resumeFlow: return [.inDoubt]
        case .cancel: return [.pending, .held, .inDoubt, .dead, .setAside]
        case .erase: return JobState.open
        case .rerender: return [.dead, .cancelled]
        case .forceResend: return [.done, .skipped]
        }
    }

    /// The state the transition ends in.
    public var target: JobState {
        switch self {
        case .claim: return .running
        case .skipAsDelivered: return .skipped
        case .succeed: return .done
        case .retryLater, .giveBack, .release, .operatorRetry, .forceResend, .resumeFlow: return .pending
        case .fail: return .dead
        case .hold, .operatorRetryWaiting: return .held
        case .expire: return .expired
        case .leaseLost(let policy): return policy == .rerun ? .pending : .inDoubt
        case .setAside: return .setAside
        case .resolve(let delivered): return delivered ? .done : .pending
        case .cancel, .erase: return .cancelled
        case .rerender(let state): return state
        }
    }
}

/// A transition asked of a state it may not start from.
public struct JobTransitionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The job concerned, when the caller named one (it goes into the message).
    public var jobID: Int64?
    /// The state the job was found in.
    public var state: JobState
    /// What was asked; its `sources` say which states would have allowed it.
    public var transition: JobTransition

    /// Thrown by `JobState.after(_:jobID:)`; operators see `description`.
    public init(jobID: Int64? = nil, state: JobState, transition: JobTransition) {
        self.jobID = jobID
        self.state = state
        self.transition = transition
    }

    public var description: String {
        let allowed = transition.sources.map(\.rawValue).joined(separator: ", ")
        let job = jobID.map { "job \($0)" } ?? "the job"
        return "\(job) is \(state.rawValue); this needs \(allowed)"
    }
}

extension JobState {
    /// The state after `transition`, or an error naming what was needed.
    public func after(_ transition: JobTransition, jobID: Int64? = nil) throws(JobTransitionError) -> JobState {
        guard transition.sources.contains(self) else {
            throw JobTransitionError(jobID: jobID, state: self, transition: transition)
        }
        return transition.target
    }
}

/// Why a job is held (or parked `in_doubt`, or set aside). Stored as a code and
/// a detail in columns of their own: the store releases held jobs by code,
/// never by the wording of a message.
public enum HoldReason: Sendable, Hashable, CustomStringConvertible {
    /// The mapping needs `${VARIABLES}` that are not set; a reload that sets them releases the job.
    case missingVariables([String])
    /// An `after` mapping waits for that mapping's job of the same entity to be done.
    case waitingFor(mapping: String)
    /// No executor for the job's kind in this version.
    case noExecutor(kind: String)
    /// The job's mapping is no longer loaded (or no longer of the job's kind).
    case mappingNotLoaded(mapping: String)
    /// A mapping setting makes the job impossible to run now (e.g. a schedule that never fires).
    case configuration(String)
    /// The runner died during an attempt that may have reached the downstream: an operator decides.
    case crashedDuringAttempt
    /// Claiming or recording the job kept failing (see `JobState.setAside`).
    case storeFault(String)
    /// The OAuth2 refresh-token credential the job sends with cannot be used
    /// (never authorized, refused, spent by a lost refresh, expired):
    /// `oauth authorize` releases the jobs it concerns.
    case authorizationNeeded(credential: String, problem: CredentialProblem)

    /// The stored code (column `hold_reason`).
    public enum Code: String, Sendable, CaseIterable {
        case missingVariables = "missing_variables"
        case waitingFor = "after"
        case noExecutor = "no_executor"
        case mappingNotLoaded = "mapping_not_loaded"
        case configuration
        case crashedDuringAttempt = "in_doubt"
        case storeFault = "store_fault"
        case authorizationNeeded = "oauth_credential"
    }

    /// What the store matches on when it releases held jobs (never the wording).
    public var code: Code {
        switch self {
        case .missingVariables: return .missingVariables
        case .waitingFor: return .waitingFor
        case .noExecutor: return .noExecutor
        case .mappingNotLoaded: return .mappingNotLoaded
        case .configuration: return .configuration
        case .crashedDuringAttempt: return .crashedDuringAttempt
        case .storeFault: return .storeFault
        case .authorizationNeeded: return .authorizationNeeded
        }
    }

    /// The stored detail (column `hold_detail`).
    public var detail: String? {
        switch self {
        case .missingVariables(let names): return names.joined(separator: ",")
        case .waitingFor(let mapping), .mappingNotLoaded(let mapping): return mapping
        case .noExecutor(let kind): return kind
        case .configuration(let text), .storeFault(let text): return text
        case .crashedDuringAttempt: return nil
        case .authorizationNeeded(let credential, let problem): return problem.rawValue + ":" + credential
        }
    }

    /// Reads the stored columns back; `nil` for an unknown code.
    public init?(code: String, detail: String?) {
        guard let code = Code(rawValue: code) else { return nil }
        switch code {
        case .missingVariables:
            self = .missingVariables((detail ?? "").split(separator: ",").map(String.init))
        case .waitingFor: self = .waitingFor(mapping: detail ?? "")
        case .noExecutor: self = .noExecutor(kind: detail ?? "")
        case .mappingNotLoaded: self = .mappingNotLoaded(mapping: detail ?? "")
        case .configuration: self = .configuration(detail ?? "")
        case .crashedDuringAttempt: self = .crashedDuringAttempt
        case .storeFault: self = .storeFault(detail ?? "")
        case .authorizationNeeded:
            let parts = (detail ?? "").split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let problem = CredentialProblem(rawValue: parts[0]) else { return nil }
            self = .authorizationNeeded(credential: parts[1], problem: problem)
        }
    }

    /// What an operator reads (`jobs`, the log).
    public var description: String {
        switch self {
        case .missingVariables(let names):
            return "missing variable\(names.count > 1 ? "s" : "") \(names.joined(separator: ", "))"
        case .waitingFor(let mapping): return "after: waits for \(mapping) to succeed for this entity"
        case .noExecutor(let kind): return "no executor for kind '\(kind)' in this version; `jobs retry` runs it once there is one"
        case .mappingNotLoaded(let mapping): return "mapping \(mapping) is no longer loaded with this job's kind"
        case .configuration(let text): return text
        case .crashedDuringAttempt: return "the runner stopped during an attempt; the downstream may have received it: resolve it"
        case .storeFault(let text): return "set aside: \(text)"
        case .authorizationNeeded(let credential, let problem):
            let why: String
            switch problem {
            case .notAuthorized: why = "has no refresh token for this job's company yet"
            case .rejected: why = "was refused by the token endpoint (invalid_grant: revoked or expired)"
            case .interrupted:
                why = "was spent by an earlier refresh whose answer never arrived or was never stored (a timeout, or the daemon stopped during it)"
            case .expired: why = "has expired (its refresh token lifetime ran out)"
            }
            return "OAuth2 credential \(credential) \(why): run `jobylon-bridge oauth authorize \(credential)` (with --company for a per-company one)"
        }
    }
}

/// What the end of a job means for the jobs of `after` mappings that wait for
/// it (same company and subject): the one rule the store applies when a job
/// ends and when an operator retries a waiting job.
public enum DependencyOutcome: Sendable, Hashable {
    /// The effect exists (done, or skipped because another job delivered it):
    /// the waiting jobs run, with the capture of the job that delivered it.
    case release
    /// An operator (or erasure) stopped the chain: the waiting jobs are cancelled with it.
    case cancel
    /// It ended without its effect (dead, expired, set aside): the waiting jobs
    /// keep waiting, and say why, so an operator can retry the failed job (the
    /// chain then goes on) or cancel them.
    case keepWaiting(because: String)

    /// `nil` when the state is not an end that concerns the waiting jobs
    /// (still pending, running, held or in doubt: they simply wait on).
    public static func after(_ state: JobState, jobID: Int64, mapping: String) -> DependencyOutcome? {
        switch state {
        case .done, .skipped: return .release
        case .cancelled: return .cancel
        case .dead, .expired, .setAside:
            return .keepWaiting(
                because: "after: waits for \(mapping), whose job \(jobID) is \(state.rawValue): `jobs retry \(jobID)` lets this one run "
                    + "once it succeeds, `jobs cancel` stops this one")
        case .pending, .running, .held, .inDoubt: return nil
        }
    }

    /// Why a cancelled waiting job was cancelled.
    public static func cancelledWith(jobID: Int64, mapping: String) -> String {
        "cancelled with job \(jobID) of \(mapping), which it waited for"
    }
}
