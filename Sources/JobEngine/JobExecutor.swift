import Domain
import JSON
import Logging

/// Runs one kind of job (`rest`, `csv`, `archive`, `log`). Executors never
/// touch the job's state: they report what happened (`AttemptOutcome`) and
/// the rules that bound its retries; `RetryDecision` decides and the runner
/// records it.
public protocol JobExecutor: Sendable {
    var kind: String { get }
    func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome
    /// The limits of this job's retries (a mapping's `retry`, a URL's deadline).
    func retryRules(for job: ClaimedJob) -> RetryRules
    /// Told how the attempt was recorded (for a target's own alerts and counters).
    func recorded(_ completion: JobCompletion, for job: ClaimedJob, logger: Logger)
    /// Told of a job of this kind created already ended (`expired`: its
    /// deadline had passed when its event arrived), after its commit: the
    /// same alerts and counters as `recorded`, for a job no attempt will see.
    func endedAtCreation(_ job: PlannedJob, logger: Logger)
    /// Before a routed job is created: an executor whose work is only a
    /// write of the store's (CSV staging) hands it to the routing write, so
    /// the job ends in the commit that creates it.
    func prepareAtCreation(_ job: inout PlannedJob)
}

extension JobExecutor {
    /// Executors without their own rules retry by the standard ones.
    public func retryRules(for job: ClaimedJob) -> RetryRules { .standard }
    /// Nothing to do after recording, by default.
    public func recorded(_ completion: JobCompletion, for job: ClaimedJob, logger: Logger) {}
    /// Nothing to report, by default.
    public func endedAtCreation(_ job: PlannedJob, logger: Logger) {}
    /// Nothing to hand over, by default: the job is claimed and run.
    public func prepareAtCreation(_ job: inout PlannedJob) {}
}

/// The built-in `log` kind: records the event's arrival in the log (ids only,
/// never personal data). Its effect is harmless, which makes it the proof of
/// the whole path before real executors exist.
public struct LogExecutor: JobExecutor {
    /// Jobs of the built-in audit log.
    public let kind = "log"

    public init() {}

    /// Logs the job's ids (never its payload: it may hold personal data) and succeeds.
    public func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome {
        guard let payload = try? JSONParser.parse(job.payload, options: .strict) else {
            return .permanent(reason: "payload is not valid JSON")
        }
        logger.info(
            "event processed",
            metadata: [
                "job": "\(job.id)",
                "event": "\(payload["event"]?.stringValue ?? "?")",
                "company_id": "\(job.companyID ?? "-")",
                "subject_id": "\(job.subjectID ?? "-")",
            ])
        return .succeeded(capture: nil)
    }
}
