import CSVExport
import Clocks
import Domain
import FileArchive
import Foundation
import Logging
import Mapping
import RESTDelivery
import Routing
import StoreSQLite

/// A short operator process beside the running daemon (the CLI's `jobs`,
/// `replay`, `export`, `archive` and `erase`): the store opened beside it
/// (SQLite WAL: readers never wait, writes wait on the busy timeout), the
/// configuration, and the operations that take more than one part.
///
/// The CLI only parses arguments and prints what these return.
public final class OperatorSession {
    /// The configuration the command was started with.
    public let configuration: BridgeConfiguration
    /// Opened for the session; `close()` releases it.
    public let store: SQLiteStore
    let clock: any WallClock
    let logger: Logger

    /// Opens the store of `configuration`'s data directory; warnings and worse are logged.
    public init(configuration: BridgeConfiguration, clock: any WallClock = SystemWallClock()) throws {
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = .warning
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.store = try SQLiteStore(directory: configuration.dataDir, logger: logger)
    }

    /// Closes the store (a last checkpoint).
    public func close() {
        store.close()
    }

    /// The session's clock reading, for commands that stamp what they do.
    public var now: Timestamp { clock.now() }

    /// The archive as configured.
    public var archiveLayout: ArchiveLayout { ArchiveLayout(root: configuration.resolvedArchiveDir) }

    /// The mappings of `directory` (default: the configuration's) with the
    /// variables as they are now; diagnostics go to `print`; errors throw.
    public func mappings(directory: String? = nil, print: (String) -> Void) throws(OperatorFailure) -> MappingSet {
        let directory = directory ?? configuration.mappingsDir
        let (set, errors, _) = MappingLoader.load(
            directory: directory, connectors: configuration.connectors, variables: BridgeApplication.variables(for: configuration), strict: false,
            print: print)
        guard errors == 0 else { throw OperatorFailure("\(errors) error(s) in the mapping files of \(directory)") }
        return set
    }

    // MARK: Replay

    /// Which stored events to route again.
    public enum ReplaySelection: Sendable {
        case event(Int64)
        case received(since: Timestamp, until: Timestamp?)
    }

    /// One job's fate in a replay, as the CLI prints it.
    public struct ReplayLine: Sendable {
        /// The stored event (inbox id).
        public var eventID: Int64
        /// Which job: mapping, item and kind, as the store labels it.
        public var job: String
        /// What the store did with it (`created`, `rerendered`, `skipped (delivered)`, `unchanged`, `forced`).
        public var action: String
    }

    /// Routes the selected events through `mappings` the way `serve` does
    /// (the same router) and lets the store decide per job: new jobs for new
    /// mappings, dead or cancelled ones rendered again, delivered ones kept
    /// unless `force`. Returns how many events were replayed.
    public func replay(
        _ selection: ReplaySelection, mappings: MappingSet, onlyMapping: String?, force: Bool, report: (ReplayLine) -> Void
    ) async throws -> Int {
        let router = BridgeApplication.router(
            registry: MappingRegistry(mappings), companies: CompanyDirectory(try store.companies()), configuration: configuration)
        let events: [SQLiteStore.StoredEvent]
        switch selection {
        case .event(let id): events = try store.events(id: id, since: nil, until: nil)
        case .received(let since, let until): events = try store.events(id: nil, since: since, until: until)
        }
        var count = 0
        for stored in events {
            guard let envelope = try? WebhookEnvelope.read(stored.body) else { continue }
            let planned = router.route(envelope, body: stored.body, receivedAt: stored.receivedAt).filter {
                onlyMapping == nil || $0.mapping == onlyMapping
            }
            for outcome in try await store.replay(eventID: stored.id, jobs: planned, envelope: envelope, force: force, now: now) {
                report(ReplayLine(eventID: stored.id, job: outcome.label, action: outcome.action.rawValue))
            }
            count += 1
        }
        return count
    }

    // MARK: Erasure

    /// What an erasure did (or, dry, would do), with the archive's part.
    public struct ErasureOutcome: Sendable {
        /// What the store erased (or would erase), with the archived files and delivered CSV files it found.
        public var report: ErasureReport
        /// Archived files that could not be deleted, with the reason.
        public var failures: [String] = []
    }

    /// Erases a candidate's personal data from the store, then deletes their
    /// archived files with sidecars and records (`removing` sees each first).
    /// Delivered CSV files are outside the store: the report lists them.
    public func erase(candidate: String, company: String?, dryRun: Bool, removing: (ArchivedFile) -> Void) throws -> ErasureOutcome {
        guard !candidate.isEmpty else { throw OperatorFailure("the candidate id must not be empty") }
        var outcome = ErasureOutcome(report: try store.erase(candidateID: candidate, companyID: company, now: now, dryRun: dryRun))
        let layout = archiveLayout
        for file in outcome.report.archiveFiles {
            removing(file)
            guard !dryRun else { continue }
            do {
                try layout.remove(file)
                if let id = file.id { try store.deleteArchivedFile(id: id) }
            } catch {
                outcome.failures.append("\(file.path): \(error)")
            }
        }
        return outcome
    }

    // MARK: Archive

    /// The result of re-hashing the archive.
    public struct ArchiveVerification: Sendable {
        /// Records re-hashed.
        public var checked = 0
        /// Corrupt, missing or resized files, each with its archive id.
        public var problems: [String] = []
        /// Files on disk without a store record (a crash before recording, or copied in by hand).
        public var unrecorded: [String] = []
    }

    /// Re-hashes every recorded file against its SHA-256 and lists files on
    /// disk that no record names (downloads in progress excepted).
    public func verifyArchive() throws -> ArchiveVerification {
        let layout = archiveLayout
        var result = ArchiveVerification()
        var recorded = Set<String>()
        var last: Int64 = 0
        while true {
            let page = try store.archivedFiles(afterID: last, limit: 500)
            if page.isEmpty { break }
            for file in page {
                last = file.id ?? last
                recorded.insert(file.path)
                result.checked += 1
                if let problem = layout.verify(file) { result.problems.append("archive id \(file.id ?? 0): \(problem)") }
            }
        }
        if let walker = FileManager.default.enumerator(atPath: layout.root) {
            while let relative = walker.nextObject() as? String {
                if relative.hasPrefix(".partial") { continue }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: layout.absolute(relative), isDirectory: &isDirectory), !isDirectory.boolValue
                else { continue }
                let base = relative.hasSuffix(".json") ? String(relative.dropLast(5)) : relative
                if !recorded.contains(base) { result.unrecorded.append(relative) }
            }
        }
        return result
    }

    /// Deletes (or, dry, lists) archived files past retention, as the daemon does hourly.
    public func purgeArchive(dryRun: Bool, progress: (ArchivedFile) -> Void) -> ArchivePurger.Outcome {
        ArchivePurger(store: store, layout: archiveLayout).purge(now: now, dryRun: dryRun, progress: progress)
    }

    // MARK: CSV export

    /// Which period files `export` writes.
    public enum ExportRequest: Sendable {
        /// Every ended period not yet exported, as the daemon would.
        case due
        /// Re-creates the file of the period that starts on a local date
        /// (`yyyy-MM-dd`) or contains an ISO-8601 time.
        case period(String)
        /// The open period's rows so far, under `-partial-<timestamp>`; the period stays open.
        case openPeriod
    }

    /// A file written by `export`.
    public struct ExportedFile: Sendable {
        /// Where the file was published.
        public var path: String
        /// Counted for a partial file; the store keeps the count of a period's file.
        public var rows: Int?
    }

    /// Writes the CSV files of `mappingName` that `request` asks for; `progress` sees row counts of long files.
    public func export(
        mapping mappingName: String, request: ExportRequest, mappings: MappingSet, progress: @escaping (Int) -> Void
    ) throws -> [ExportedFile] {
        guard let mapping = mappings.mapping(named: mappingName), case .csv(let csv) = mapping.target else {
            throw OperatorFailure("no csv mapping named \(mappingName)")
        }
        let exporter = CSVExporter(
            store: store, registry: MappingRegistry(mappings), outbox: (configuration.dataDir as NSString).appendingPathComponent("outbox"))
        let schedule = try CSVExporter.schedule(of: csv, mapping: mappingName)
        let zone = schedule.zone
        let nowSeconds = now.milliseconds / 1000
        let owner = "cli:\(getpid())"
        switch request {
        case .openPeriod:
            guard let open = schedule.period(containing: nowSeconds) else { throw OperatorFailure("the schedule never fires") }
            let period = CSVPeriod(start: open.start, end: open.end)
            let name = try exporter.fileName(mapping, csv, period: period, zone: zone, now: nowSeconds)
            if csv.sftp != nil {
                throw OperatorFailure(
                    "\(mappingName) delivers to an sftp:// folder; --now writes local partial files only (try `map` on an event to see its row)")
            }
            let stamp = MappingClock.iso8601(milliseconds: nowSeconds * 1000).replacingOccurrences(of: ":", with: "")
                .replacingOccurrences(of: ".000", with: "")
            let ext = (name as NSString).pathExtension
            let partial = ((name as NSString).deletingPathExtension) + "-partial-\(stamp)" + (ext.isEmpty ? "" : "." + ext)
            let rows = try exporter.write(mapping, csv, period: period, to: partial, progress: progress)
            return [ExportedFile(path: partial, rows: rows?.rows ?? 0)]
        case .period(let text):
            let probe: Int64
            if let ms = MappingClock.milliseconds(fromISO8601: text), text.count > 10 {
                probe = ms / 1000
            } else {
                let parts = text.split(separator: "-").compactMap { Int($0) }
                guard parts.count == 3 else { throw OperatorFailure("--period takes yyyy-MM-dd or an ISO-8601 time") }
                // Noon local time on that date lies in the period that starts that day.
                let instants = CivilCalendar.instants(of: .init(year: parts[0], month: parts[1], day: parts[2], hour: 12), in: zone)
                guard let noon = instants.first else { throw OperatorFailure("no such local time") }
                probe = noon
            }
            guard let found = schedule.period(containing: probe), found.end <= nowSeconds else {
                throw OperatorFailure("that period has not ended yet; use --now for a partial file")
            }
            let period = CSVPeriod(start: found.start, end: found.end)
            let written = try exporter.export(
                mapping, csv, period: period, owner: owner, now: nowSeconds, redo: true, logger: logger, progress: progress)
            return written.map { [ExportedFile(path: $0, rows: nil)] } ?? []
        case .due:
            var files: [ExportedFile] = []
            for due in try exporter.duePeriods(mapping, csv, now: nowSeconds) {
                if let written = try exporter.export(mapping, csv, period: due, owner: owner, now: nowSeconds, logger: logger, progress: progress) {
                    files.append(ExportedFile(path: written, rows: nil))
                }
            }
            return files
        }
    }
}

/// An operator command that cannot do what was asked; nothing was changed.
public struct OperatorFailure: Error, Sendable, CustomStringConvertible {
    /// What was refused and why, for the operator's terminal.
    public var message: String

    /// `message` as the operator will read it.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

// MARK: OAuth2 credentials

extension OperatorSession {
    /// TLS and proxy as `serve` uses them for downstreams and token endpoints.
    public var downstreamTLS: RestExecutor.TLSSettings {
        RestExecutor.TLSSettings(
            caBundle: configuration.tlsCABundle, insecureSkipVerify: configuration.tlsInsecureSkipVerify, proxy: configuration.outboundProxy)
    }

    /// Stores the first refresh token of an authorization and releases the
    /// jobs held for it (a running daemon picks them up); returns how many.
    public func storeAuthorized(_ credential: RefreshCredential) async throws -> Int {
        try await store.storeAuthorized(credential, now: clock.now())
    }

    /// Every stored credential, without its token.
    public func refreshCredentials() async throws -> [RefreshCredential] {
        try await store.allRefreshCredentials()
    }
}
