import BridgeCore
import JSON
import Logging

/// Runs one kind of job (`rest`, `csv`, `archive`, `log`). Executors never
/// touch the store: they return what happened and the runner records it.
public protocol JobExecutor: Sendable {
    var kind: String { get }
    func execute(_ job: ClaimedJob, logger: Logger) async -> ExecutionResult
}

public enum ExecutionResult: Sendable, Hashable {
    case done(capture: JSONValue?)
    /// Try again later; `after` overrides the backoff (e.g. from `Retry-After`).
    case retryable(reason: String, after: Duration?)
    case permanent(reason: String)
    case held(reason: String)
    /// Try again after `after`, without the attempt cap: the executor bounds
    /// its own retries by a deadline (and answers `expired` past it).
    case retryBeforeDeadline(reason: String, after: Duration)
    /// The deadline passed before the effect could happen.
    case expired(reason: String)
}

/// The built-in `log` kind: records the event's arrival in the log (ids only,
/// never personal data). Its effect is harmless, which makes it the proof of
/// the whole path before real executors exist.
public struct LogExecutor: JobExecutor {
    public let kind = "log"

    public init() {}

    public func execute(_ job: ClaimedJob, logger: Logger) async -> ExecutionResult {
        guard let payload = try? JSONParser.parse(job.payload, options: .strict) else {
            return .permanent(reason: "payload is not valid JSON")
        }
        logger.info("event processed", metadata: [
            "job": "\(job.id)",
            "event": "\(payload["event"]?.stringValue ?? "?")",
            "company_id": "\(job.companyID ?? "-")",
            "subject_id": "\(job.subjectID ?? "-")",
        ])
        return .done(capture: nil)
    }
}
