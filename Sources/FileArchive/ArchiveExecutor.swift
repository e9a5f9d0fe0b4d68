import Clocks
import CurlClient
import Domain
import DurableFiles
import Foundation
import JSON
import JobEngine
import Logging
import Mapping
import Metrics
import ServiceLifecycle

/// Settings of the CV archive.
public struct ArchiveConfiguration: Sendable {
    /// The archive root; downloads in progress go to its `.partial` folder, on the same volume.
    public var directory: String
    /// Operator-listed host patterns; exact hosts here may use http and private addresses.
    public var allowedHosts: [String] = []
    /// Days kept per data class; a mapping's `retention_days` may only shorten them.
    public var retention = ArchiveRetention()
    /// Limits of each download; `init` points its `partialDirectory` into `directory`.
    public var downloader: ArchiveDownloader.Settings
    /// Longest wait between attempts (the deadline bounds them all).
    public var maxRetryDelay: Duration = .seconds(300)
    /// Retry delay while a volume is below the free-space floor.
    public var lowSpaceDelay: Duration = .seconds(60)

    /// Set `directory` here, not afterwards: the downloader's `.partial` folder
    /// is derived from it once.
    public init(directory: String) {
        self.directory = directory
        self.downloader = ArchiveDownloader.Settings(partialDirectory: ArchiveLayout(root: directory).partialDirectory)
    }
}

/// Runs `archive` jobs: fetches a candidate's signed file URL before it
/// expires and files it under the archive with a metadata record.
///
/// Order of effects, each safe to repeat after a crash: temp file fsync'd →
/// renamed to its content-addressed name (same bytes → same name) →
/// directory fsync'd → sidecar → store record (unique per candidate and
/// content) → job done. A re-run finds the record and stops there.
public struct ArchiveExecutor: JobExecutor {
    /// Claims the jobs of `archive` mappings.
    public let kind = "archive"
    let registry: MappingRegistry
    let store: any ArchiveStore
    let clock: any WallClock
    let configuration: ArchiveConfiguration
    let layout: ArchiveLayout
    let downloader: ArchiveDownloader
    let metrics: ArchiveMetrics?

    let io: BlockingIOPool

    /// `client` and `io` stay with the caller, who shuts them down after the
    /// runner stopped; without `metricsFactory` nothing is counted.
    public init(
        registry: MappingRegistry, store: any ArchiveStore, clock: any WallClock, configuration: ArchiveConfiguration,
        client: CurlClient, io: BlockingIOPool, metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.registry = registry
        self.store = store
        self.clock = clock
        self.configuration = configuration
        self.layout = ArchiveLayout(root: configuration.directory)
        self.downloader = ArchiveDownloader(client: client, io: io, settings: configuration.downloader)
        self.io = io
        self.metrics = metricsFactory.map(ArchiveMetrics.init)
    }

    /// Retries are bounded by the signed URL's deadline alone (no count), with
    /// at least half the backoff kept (never a burst of attempts).
    public func retryRules(for job: ClaimedJob) -> RetryRules {
        let deadline = job.deadline ?? SignedURL(ArchiveExecutor.url(of: job) ?? "").deadline(receivedAt: job.createdAt ?? clock.now())
        return RetryRules(
            backoff: RetryPolicy(firstDelay: .seconds(2), maxDelay: configuration.maxRetryDelay),
            maxAttempts: nil, giveUpAfter: nil, deadline: deadline, minimumJitter: 0.5)
    }

    static func url(of job: ClaimedJob) -> String? {
        (try? JSONParser.parse(job.payload, options: .strict))?["url"]?.stringValue
    }

    /// Expired downloads are a compliance alert of their own.
    public func recorded(_ completion: JobCompletion, for job: ClaimedJob, logger: Logger) {
        switch completion {
        case .expired(let reason):
            reportExpired(reason: reason, logger: logger)
        case .retry:
            metrics?.downloads(outcome: "retry").increment()
        default:
            break
        }
    }

    /// A job created `expired` (its URL had expired before the webhook
    /// arrived) is counted and alerted like one that expired in the queue.
    public func endedAtCreation(_ job: PlannedJob, logger: Logger) {
        reportExpired(reason: job.reason ?? "expired", logger: logger)
    }

    /// An alert: compliance expected this file and it is now out of reach.
    func reportExpired(reason: String, logger: Logger) {
        metrics?.downloads(outcome: "expired").increment()
        metrics?.expired.increment()
        logger.error("ALERT archive: signed URL expired before the file was archived", metadata: ["reason": "\(reason)"])
    }

    /// One attempt: unsafe names and refused URLs are permanent, an expired URL
    /// is reported without being requested, network, disk and store trouble
    /// retries before the deadline, and identical content of a candidate is
    /// stored once.
    public func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome {
        guard let mapping = registry.current.mapping(named: job.mapping), case .archive(let target) = mapping.target else {
            return .held(.mappingNotLoaded(mapping: job.mapping))
        }
        guard let payload = try? JSONParser.parse(job.payload, options: .strict),
            let url = payload["url"]?.stringValue, let kind = payload["kind"]?.stringValue,
            let directory = payload["directory"]?.stringValue
        else {
            return fail(.permanent(reason: "stored archive job lacks url, kind or directory"), reason: "invalid_job")
        }
        guard let companyID = job.companyID, let candidateID = job.subjectID else {
            return fail(.permanent(reason: "archive job without company and candidate ids"), reason: "invalid_job")
        }
        let segments: [String]
        do {
            segments = try ArchiveNames.directorySegments(directory)
            try ArchiveNames.checkKind(kind)
        } catch {
            return fail(.permanent(reason: "refused: \(error.description)"), reason: "unsafe_name")
        }
        let signed = SignedURL(url)
        let deadline = job.deadline ?? signed.deadline(receivedAt: job.createdAt ?? clock.now())
        let host = RawURL(url)?.host ?? "?"
        var logger = logger
        logger[metadataKey: "kind"] = "\(kind)"
        logger[metadataKey: "host"] = "\(host)"
        let now = clock.now()
        if now >= deadline {
            return .expired(reason: PlannedJob.expiredReason(deadline: deadline, before: "it could be fetched"))
        }
        metrics?.secondsToDeadline.record(Double(deadline.milliseconds - now.milliseconds) / 1000)

        let policy = ArchiveHostPolicy(mappingPatterns: target.allowedHosts, operatorPatterns: configuration.allowedHosts)
        // A graceful stop cancels the transfer (a large file must not hold up SIGTERM);
        // the job runs again at the next start, its temp file removed then.
        let result = await cancelWhenGracefulShutdown { [downloader] in
            await downloader.fetch(url, policy: policy, maxBytes: Int64(target.maxBytes), tag: "job\(job.id)-\(job.attempt)")
        }
        let downloaded: ArchiveDownloader.Downloaded
        switch result {
        case .success(let value):
            downloaded = value
        case .failure(let failure):
            return handle(failure, job: job, deadline: deadline, urlExpiry: signed.expiry, logger: logger)
        }
        metrics?.bytes.increment(by: downloaded.size)

        if let existing = try? await store.archivedFile(companyID: companyID, candidateID: candidateID, sha256: downloaded.sha256) {
            // Identical content of this candidate is stored once (a re-send, the same file under two kinds).
            try? await io.run { _ = unlink(downloaded.temporaryPath) }
            metrics?.downloads(outcome: "duplicate").increment()
            logger.info("archive: identical content already archived", metadata: ["archive_id": "\(existing.id ?? 0)"])
            return .succeeded(capture: capture(existing, duplicate: true))
        }
        let originalName =
            downloaded.contentDispositionName ?? ArchiveNames.originalName(urlWithoutQuery: SignedURL(downloaded.finalURL.text).withoutQuery)
        let fileExtension = downloaded.sniffed?.fileExtension ?? originalName.flatMap(ArchiveNames.fileExtension) ?? "bin"
        let fileName = target.fileName.render(kind: kind, sha256: downloaded.sha256, fileExtension: fileExtension)
        do {
            try ArchiveNames.checkKind(fileName)
        } catch {
            try? await io.run { _ = unlink(downloaded.temporaryPath) }
            return fail(
                .permanent(reason: "refused: file name from the pattern \(target.fileName.pattern): \(error.description)"), reason: "unsafe_name")
        }
        let relative = ArchiveLayout.relativePath(segments: segments, fileName: fileName)
        let downloadedAt = clock.now()
        let days = configuration.retention.days(kind: kind, mappingOverride: target.retentionDays)
        let record = ArchivedFile(
            companyID: companyID, candidateID: candidateID, jobID: job.id, mapping: job.mapping, kind: kind, originalName: originalName,
            contentType: downloaded.contentType, sniffedType: downloaded.sniffed?.mediaType,
            typeMismatch: SniffedType.mismatch(declared: downloaded.contentType, sniffed: downloaded.sniffed),
            size: downloaded.size, sha256: downloaded.sha256, path: relative, downloadedAt: downloadedAt,
            urlExpiry: signed.expiry.map(Timestamp.init(seconds:)), sourceURL: signed.withoutQuery,
            retainUntil: downloadedAt.adding(.seconds(Int64(days) * 86_400)))
        let placed = await io.result { [layout] () -> Result<Void, IOFailure> in
            do throws(IOFailure) {
                try layout.place(temporaryPath: downloaded.temporaryPath, relativePath: relative)
                try layout.writeSidecar(record)
                return .success(())
            } catch {
                unlink(downloaded.temporaryPath)
                return .failure(error)
            }
        }
        if case .failure(let placed) = placed {
            logger.error("archive: cannot file the download", metadata: ["error": "\(placed.message)"])
            return retry(reason: "disk: \(placed.message)", metric: "io")
        }
        let stored: ArchivedFile
        do {
            stored = try await store.recordArchivedFile(record)
        } catch {
            // The file is in place under its content name; a re-run records it.
            return retry(reason: "store: \(error)", metric: "store")
        }
        if stored.path != relative {
            // Two kinds of the candidate carried the same bytes and finished together:
            // the other one was recorded first; this copy goes.
            try? await io.run { [layout] in try? layout.remove(record) }
            metrics?.downloads(outcome: "duplicate").increment()
            return .succeeded(capture: capture(stored, duplicate: true))
        }
        if let mismatch = record.typeMismatch {
            logger.warning("archive: content type mismatch (archived anyway)", metadata: ["mismatch": "\(mismatch)"])
        }
        metrics?.downloads(outcome: "archived").increment()
        logger.info(
            "archive: file archived",
            metadata: [
                "archive_id": "\(stored.id ?? 0)", "size": "\(downloaded.size)",
                "seconds_to_deadline": "\((deadline.milliseconds - downloadedAt.milliseconds) / 1000)",
            ])
        return .succeeded(capture: capture(stored, duplicate: false))
    }

    func capture(_ file: ArchivedFile, duplicate: Bool) -> JSONValue {
        .object(
            JSONObject([
                .init(key: "archive_id", value: .number(JSONNumber(file.id ?? 0))),
                .init(key: "path", value: .string(file.path)),
                .init(key: "sha256", value: .string(file.sha256)),
                .init(key: "size", value: .number(JSONNumber(file.size))),
                .init(key: "duplicate", value: .bool(duplicate)),
            ]))
    }

    func handle(_ failure: ArchiveDownloader.Failure, job: ClaimedJob, deadline: Timestamp, urlExpiry: Int64?, logger: Logger) -> AttemptOutcome {
        switch failure {
        case .refused(let reason):
            logger.error("archive: download refused", metadata: ["reason": "\(reason)"])
            return fail(.permanent(reason: "refused: \(reason)"), reason: "refused")
        case .tooLarge(let limit):
            return fail(.permanent(reason: "refused: the file is larger than the mapping's max_bytes (\(limit) bytes)"), reason: "too_large")
        case .lowSpace(let problem):
            logger.warning("archive: download deferred", metadata: ["reason": "\(problem)"])
            return retry(reason: problem, metric: "low_space", after: configuration.lowSpaceDelay)
        case .io(let message):
            return retry(reason: "disk: \(message)", metric: "io")
        case .transport(let error):
            return retry(reason: "network: \(error)", metric: "network")
        case .httpStatus(let status, let retryAfter, let errorBody):
            let now = clock.now()
            let pastExpiry = now >= deadline || urlExpiry.map { now >= Timestamp(seconds: $0) } == true
            let s3Error = errorBody.flatMap(S3ErrorDocument.init(body:))
            switch DownstreamAnswers.archive(status: status, s3Error: s3Error, pastExpiry: pastExpiry) {
            case .transient(let metric):
                // A transient 400/403 is always one before the URL's expiry (after it, it is `expired`).
                let reason = status == 400 || status == 403 ? "HTTP \(status) before the URL's expiry" : "HTTP \(status)"
                return retry(reason: reason, metric: metric, after: retryAfter.flatMap { RetryAfter.delay($0, now: now) })
            case .expired(let reason):
                return .expired(reason: reason)
            case .permanent(let reason):
                logger.error("archive: the file server refused the signed URL", metadata: ["reason": "\(reason)"])
                return fail(.permanent(reason: reason), reason: status == 400 || status == 403 ? "signature" : "http_4xx")
            case .notFound(let reason):
                logger.warning("archive: the file is not at its signed URL (dead)", metadata: ["job": "\(job.id)", "status": "\(status)"])
                return fail(.permanent(reason: reason), reason: "http_4xx")
            }
        }
    }

    /// A transient failure; `RetryDecision` places the next attempt before the deadline.
    func retry(reason: String, metric: String, after: Duration? = nil) -> AttemptOutcome {
        metrics?.failures(reason: metric).increment()
        return .transient(reason: reason, retryAfter: after)
    }

    func fail(_ result: AttemptOutcome, reason: String) -> AttemptOutcome {
        metrics?.failures(reason: reason).increment()
        metrics?.downloads(outcome: "failed").increment()
        return result
    }

}

/// The archive's metrics (Prometheus names under `jobylon_bridge_archive_`).
struct ArchiveMetrics: Sendable {
    let factory: any MetricsFactory
    let bytes: Counter
    let expired: Counter
    let secondsToDeadline: Recorder

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.bytes = Counter(label: "jobylon_bridge_archive_bytes_total", factory: factory)
        self.expired = Counter(label: "jobylon_bridge_archive_expired_total", factory: factory)
        self.secondsToDeadline = Recorder(label: "jobylon_bridge_archive_seconds_to_deadline", factory: factory)
    }

    func downloads(outcome: String) -> Counter {
        Counter(label: "jobylon_bridge_archive_downloads_total", dimensions: [("outcome", outcome)], factory: factory)
    }

    func failures(reason: String) -> Counter {
        Counter(label: "jobylon_bridge_archive_failures_total", dimensions: [("reason", reason)], factory: factory)
    }
}
