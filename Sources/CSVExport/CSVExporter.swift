import Crypto
import DurableFiles
import Foundation
import JSON
import Logging
import Mapping
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
import Clocks
import Domain
import JobEngine
#endif

/// Why a period's export failed; `CSVExportService` logs it and tries again at
/// its next tick, within a minute.
public enum CSVExportError: Error, CustomStringConvertible {
    /// The file name still holds `${...}` after variables were injected.
    case unresolvedFileName(String)
    /// (folder, why): its parent is missing, it is not a folder, or no temp file
    /// could be made in it.
    case directoryUnavailable(String, String)
    /// (file, why): writing, fsync or publishing under the final name failed.
    case writeFailed(String, String)
    /// (mapping, why): the mapping's cron `schedule` or its time zone did not parse.
    case badSchedule(String, String)
    /// An `sftp://` file needs a local copy first, in the data directory's `outbox`.
    case noOutbox(mapping: String)
    /// (mapping, why): the rendered `sftp://` URL could never be uploaded to.
    case badRemoteName(mapping: String, String)
    /// The rendered file name is an `sftp://` URL without an `sftp` block, or the other way round.
    case sftpMismatch(mapping: String, hasSFTPBlock: Bool)
    /// A fixed-width value longer than its column under `overflow: fail`: the
    /// period's file is held back whole, like an unencodable character.
    case overflow(mapping: String, row: Int, column: String, width: Int, length: Int)
    /// `unencodable: fail` met a character the file's encoding lacks: the
    /// period's file is held back whole (retried each tick, so a fixed mapping
    /// writes it once, complete).
    case unencodable(mapping: String, row: Int, column: String, character: Character, encoding: TextEncoding)

    public var description: String {
        switch self {
        case .unresolvedFileName(let name): return "file name still has unset variables: \(name)"
        case .directoryUnavailable(let dir, let why): return "export folder \(dir) unavailable: \(why)"
        case .writeFailed(let file, let why): return "writing \(file) failed: \(why)"
        case .badSchedule(let mapping, let why): return "\(mapping): schedule: \(why)"
        case .badRemoteName(let mapping, let why): return "\(mapping): file: \(why)"
        case .sftpMismatch(let mapping, let block):
            return block
                ? "\(mapping): the mapping has an \"sftp\" block but its file name is not an sftp://host/path URL"
                : "\(mapping): the file name is an sftp:// URL but the mapping has no \"sftp\" block (login and host key)"
        case .noOutbox(let mapping): return "\(mapping): an sftp:// file needs the data directory (for its outbox); none is configured"
        case .overflow(let mapping, let row, let column, let width, let length):
            return "ALERT \(mapping): data row \(row), column \(column): \(length) characters do not fit its width \(width) "
                + "(overflow: fail); the period's file is held back until the mapping allows it"
        case .unencodable(let mapping, let row, let column, let character, let encoding):
            let code = character.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ")
            return "ALERT \(mapping): data row \(row), column \(column): \(code) cannot be written in \(encoding.rawValue) "
                + "(unencodable: fail); the period's file is held back until the mapping allows it"
        }
    }
}

/// Writes a period's file: a temp file in the target folder, fsync'd, then
/// renamed into place (never a partial file under the final name), the
/// folder fsync'd, optional `.done` marker.
public struct CSVExporter: Sendable {
    let store: any CSVExportStore
    let registry: MappingRegistry
    let fileMode: mode_t
    /// Where files for an `sftp://` folder are written before their upload
    /// (`<data dir>/outbox`, 0700; each file 0600 until uploaded and removed).
    let outbox: String?

    /// File names take their `${VARIABLES}` from the registry's current set.
    public init(store: any CSVExportStore, registry: MappingRegistry, fileMode: mode_t = 0o640, outbox: String? = nil) {
        self.store = store
        self.registry = registry
        self.fileMode = fileMode
        self.outbox = outbox
    }

    /// The mapping's schedule in its own time zone; a failure names the mapping.
    public static func schedule(of csv: CSVTarget, mapping: String) throws -> CronSchedule {
        do {
            return try CronSchedule(csv.schedule, timeZone: csv.timeZone)
        } catch {
            throw CSVExportError.badSchedule(mapping, error.description)
        }
    }

    /// `period.start`, `period.end` (ISO-8601 with the zone's offset) and `period.date` (local start date).
    public static func periodScope(_ period: CSVPeriod, zone: TimeZone) -> JSONValue {
        func iso(_ seconds: Int64) -> String {
            let local = CivilCalendar.local(seconds, in: zone)
            let offset = CivilCalendar.offset(zone, atEpochSeconds: seconds)
            let sign = offset < 0 ? "-" : "+"
            let a = abs(offset)
            return String(format: "%@T%02d:%02d:00%@%02d:%02d", local.dateText, local.hour, local.minute, sign, a / 3600, a % 3600 / 60)
        }
        return .object(
            JSONObject([
                .init(key: "start", value: .string(iso(period.start))),
                .init(key: "end", value: .string(iso(period.end))),
                .init(key: "date", value: .string(CivilCalendar.local(period.start, in: zone).dateText)),
            ]))
    }

    /// The period's path from the mapping's `file` template (with `period` in
    /// scope; one that fails to render is used as written), then `${VARIABLES}`;
    /// throws rather than write under a name with an unset variable.
    public func fileName(_ mapping: MappingFile, _ csv: CSVTarget, period: CSVPeriod, zone: TimeZone, now: Int64) throws -> String {
        let scope = mapping.scope(
            for: MappingEvent(type: "export", action: "period", data: .object(JSONObject()), receivedAt: "", entityKey: ""),
            now: MappingClock.iso8601(milliseconds: now * 1000), extra: ["period": CSVExporter.periodScope(period, zone: zone)])
        let rendered = (try? csv.file.render(in: scope))?.stringValue ?? csv.file.source
        let name = registry.current.variables.substitute(rendered, mask: false)
        if name.contains("${") { throw CSVExportError.unresolvedFileName(name) }
        return name
    }

    /// This exporter with `mappings`' variables for every file name it
    /// renders, however often the registry is replaced meanwhile.
    public func pinned(to mappings: MappingSet) -> CSVExporter {
        CSVExporter(store: store, registry: MappingRegistry(mappings), fileMode: fileMode, outbox: outbox)
    }

    /// The file's dialect and encoding, from the mapping.
    static func format(of csv: CSVTarget) -> CSVWriter.Format {
        let delimiter = csv.delimiter.utf8.first ?? UInt8(ascii: ",")
        return CSVWriter.Format(delimiter: delimiter, crlf: csv.lineEnding == "crlf", byteOrderMark: csv.bom, encoder: encoder(of: csv))
    }

    static func encoder(of csv: CSVTarget) -> TextEncoder? {
        csv.encoding == .utf8 ? nil : TextEncoder(encoding: csv.encoding, policy: csv.unencodable)
    }

    /// What `write` put on disk.
    public struct Written: Sendable, Hashable {
        /// Data rows (the header not counted).
        public var rows: Int
        /// The file's size and SHA-256 (hex), as recorded for an upload.
        public var size: Int64
        /// Lower-case hex.
        public var sha256: String
    }

    /// Writes the rows of `period` to `path` (mode `mode`, or the exporter's).
    /// Returns what was written, or nil when nothing was (empty period, `none`).
    /// `progress` is called every 100,000 rows; `changed` sees every change
    /// the export made to a value (data row from 1, column name, the change
    /// worded without the value): characters the encoding lacks, fixed-width
    /// cuts and control characters. `marker: false` leaves the `.done` marker
    /// to the upload.
    public func write(
        _ mapping: MappingFile, _ csv: CSVTarget, period: CSVPeriod, to path: String, mode: mode_t? = nil, marker: Bool = true,
        progress: (Int) -> Void = { _ in }, changed: (_ row: Int, _ column: String, _ change: String) -> Void = { _, _, _ in }
    ) throws -> Written? {
        var rows = 0
        var hasher = SHA256()
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            // Only the last level is created: a missing parent is a missing (network) mount, not ours to create.
            guard FileManager.default.fileExists(atPath: (directory as NSString).deletingLastPathComponent) else {
                throw CSVExportError.directoryUnavailable(directory, "does not exist")
            }
            do throws(IOFailure) {
                // Durable like the files it will hold: the parent is fsync'd too.
                try DurableFiles.makeDirectory(directory, mode: 0o750)
            } catch {
                throw CSVExportError.directoryUnavailable(directory, error.message)
            }
        } else if !isDirectory.boolValue {
            throw CSVExportError.directoryUnavailable(directory, "not a folder")
        }
        let file: StagedFile
        do throws(IOFailure) {
            file = try StagedFile.create(nextTo: path, mode: 0o600)
        } catch {
            throw CSVExportError.directoryUnavailable(directory, error.message)
        }
        do {
            defer { file.discard() }  // after publishing, the temporary name no longer exists
            var writer = RecordWriter(csv)
            func sink(_ bytes: [UInt8]) throws {
                hasher.update(data: bytes)
                try file.append(bytes)
            }
            func write(_ fields: [String], row: Int, header: Bool = false) throws {
                func name(_ column: Int) -> String { column < csv.columns.count ? csv.columns[column].name : "\(column + 1)" }
                do throws(FixedWidthWriter.Problem) {
                    for (column, change) in try writer.write(fields, header: header) { changed(row, name(column), change) }
                } catch {
                    switch error {
                    case .unencodable(let refused):
                        throw CSVExportError.unencodable(
                            mapping: mapping.name, row: row, column: name(refused.column), character: refused.character, encoding: refused.encoding)
                    case .overflow(let overflow):
                        throw CSVExportError.overflow(
                            mapping: mapping.name, row: row, column: name(overflow.column), width: overflow.width, length: overflow.length)
                    }
                }
            }
            if csv.header { try write(csv.columns.map(\.name), row: 0, header: true) }
            try store.forEachCSVRow(mapping: mapping.name, periodStart: period.start) { _, bytes in
                let row = (try? JSONParser.parse(bytes, options: .strict)) ?? .null
                try write(csv.columns.map { CSVWriter.text(row[$0.name]) }, row: rows + 1)
                rows += 1
                if writer.bufferedBytes >= 1 << 16 { try writer.flush(sink) }
                if rows % 100_000 == 0 { progress(rows) }
            }
            if rows == 0 && csv.emptyPeriod == "none" { return nil }
            try writer.flush(sink)
            // Readable by the payroll group only once complete.
            try file.finish(mode: mode ?? fileMode)
            try DurableFiles.publish(file.temporaryPath, as: path)
            // The file is delivered: a marker that cannot be written must not
            // make the period export (and deliver) again; its absence shows.
            if csv.doneMarker && marker { try? DurableFiles.write([], to: path + ".done", mode: 0o600) }
        } catch let failure as IOFailure {
            throw CSVExportError.writeFailed(path, failure.message)
        }
        return Written(rows: rows, size: file.size, sha256: FileHasher.hex(hasher.finalize()))
    }

    /// The local copy of an `sftp://` file: `<outbox>/<mapping>/<period start>-<name>`.
    func outboxPath(_ mapping: MappingFile, remote: String, period: CSVPeriod) throws -> String {
        guard let outbox else { throw CSVExportError.noOutbox(mapping: mapping.name) }
        do throws(IOFailure) {
            if !FileManager.default.fileExists(atPath: outbox) { try DurableFiles.makeDirectory(outbox, mode: 0o700) }
            let folder = outbox + "/" + mapping.name
            if !FileManager.default.fileExists(atPath: folder) { try DurableFiles.makeDirectory(folder, mode: 0o700) }
            // One name per export: a redo never rewrites the copy an upload may be reading.
            let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            return folder + "/\(period.start)-\(tag)-" + (remote as NSString).lastPathComponent
        } catch {
            throw CSVExportError.directoryUnavailable(outbox, error.message)
        }
    }

    /// Exports one period if it can claim it; returns the file written.
    @discardableResult
    public func export(
        _ mapping: MappingFile, _ csv: CSVTarget, period: CSVPeriod, owner: String, now: Int64, redo: Bool = false,
        logger: Logger, progress: (Int) -> Void = { _ in }
    ) throws -> String? {
        guard try store.claimCSVExport(mapping: mapping.name, period: period, owner: owner, now: now, staleAfter: 600, redo: redo) else { return nil }
        let zone = TimeZone(identifier: csv.timeZone) ?? TimeZone(secondsFromGMT: 0) ?? .current
        do {
            let path = try fileName(mapping, csv, period: period, zone: zone, now: now)
            var changes: [String] = []
            var changeCount = 0
            let remote = csv.sftp != nil
            if remote != path.lowercased().hasPrefix("sftp://") { throw CSVExportError.sftpMismatch(mapping: mapping.name, hasSFTPBlock: remote) }
            if remote {
                // A URL the upload could never use is refused now, before it is recorded with the period.
                do throws(CSVUploader.AttemptFailure) {
                    _ = try RemoteName(path)
                } catch {
                    throw CSVExportError.badRemoteName(mapping: mapping.name, error.reason)
                }
            }
            // A redo replaces the period's upload; its older local copy goes once the new one is recorded.
            let replaced = remote ? try store.csvUpload(mapping: mapping.name, periodStart: period.start)?.localPath : nil
            let local = remote ? try outboxPath(mapping, remote: path, period: period) : path
            let written = try write(mapping, csv, period: period, to: local, mode: remote ? 0o600 : nil, marker: !remote, progress: progress) {
                row, column, change in
                changeCount += 1
                // The characters only, never the value around them (names are personal data).
                if changes.count < 50 { changes.append("data row \(row), column \(column): \(change)") }
            }
            if changeCount > 0 {
                logger.warning(
                    "csv export: characters the file's encoding lacks were changed",
                    metadata: [
                        "mapping": "\(mapping.name)", "encoding": "\(csv.encoding.rawValue)", "policy": "\(csv.unencodable)",
                        "changes": "\(changeCount)", "details": "\(changes.joined(separator: "; "))\(changeCount > changes.count ? "; …" : "")",
                    ])
            }
            let upload = written.flatMap { written in
                remote
                    ? FileUpload(
                        mapping: mapping.name, periodStart: period.start, localPath: local, remoteURL: path, size: written.size,
                        sha256: written.sha256, now: now) : nil
            }
            let rows = written?.rows
            try store.completeCSVExport(
                mapping: mapping.name, period: period, file: rows == nil ? "" : path, rows: rows ?? 0, now: now, upload: upload)
            if let replaced, replaced != local { unlink(replaced) }
            logger.notice(
                "csv exported",
                metadata: ["mapping": "\(mapping.name)", "period": "\(CivilCalendar.local(period.start, in: zone).dateText)", "rows": "\(rows ?? 0)"])
            return rows == nil ? nil : path
        } catch {
            try? store.releaseCSVExport(mapping: mapping.name, period: period)
            throw error
        }
    }

    /// Every ended period not yet exported, oldest first (catch-up after downtime).
    public func duePeriods(_ mapping: MappingFile, _ csv: CSVTarget, now: Int64) throws -> [CSVPeriod] {
        let schedule = try CSVExporter.schedule(of: csv, mapping: mapping.name)
        let since = try store.csvScheduleSince(mapping: mapping.name, now: now)
        var cursor = max(since, try store.csvLastExportedEnd(mapping: mapping.name) ?? since) - 1
        var periods: [CSVPeriod] = []
        while let end = schedule.next(after: cursor), end <= now, periods.count < 1000 {
            if let start = schedule.previous(before: end), try !store.csvPeriodExported(mapping: mapping.name, periodStart: start) {
                periods.append(CSVPeriod(start: start, end: end))
            }
            cursor = end
        }
        return periods
    }
}

/// Runs `csv` jobs: stages the rendered row into the period its event was received in.
public struct CSVExecutor: JobExecutor {
    /// Claims the jobs of `csv` mappings.
    public let kind = "csv"
    let registry: MappingRegistry
    let store: any CSVStaging
    let clock: any WallClock
    /// The last period found per schedule: nearly every job falls into it, and
    /// computing a period walks the calendar.
    let periods = PeriodCache()

    /// Staging only: files are written later by `CSVExportService`, never by a job.
    public init(registry: MappingRegistry, store: any CSVStaging, clock: any WallClock) {
        self.registry = registry
        self.store = store
        self.clock = clock
    }

    /// Stages the row into the period of the event's `received_at`, not of the
    /// attempt, so a late retry still lands in the right file; a staging error
    /// retries after at least 5 s.
    public func execute(_ job: ClaimedJob, logger: Logger) async -> AttemptOutcome {
        guard let payload = try? JSONParser.parse(job.payload, options: .strict) else { return .permanent(reason: "stored row is not valid") }
        let staging: RowStaging
        switch prepare(mapping: job.mapping, payload: payload) {
        case .ready(let ready): staging = ready
        case .cannot(let outcome): return outcome
        }
        do {
            let outcome = try await store.stage(
                mapping: staging.mapping, period: staging.period, openPeriod: staging.openPeriod, rowKey: staging.rowKey,
                receivedAt: staging.receivedAt, jobID: job.id, row: staging.row, policy: staging.policy, companyID: job.companyID,
                subjectID: job.subjectID)
            return .succeeded(capture: outcome.capture(policy: staging.policy))
        } catch {
            return .transient(reason: "staging failed: \(error)", retryAfter: .seconds(5))
        }
    }

    /// A routed `csv` job carries its staging, so the routing write stages the
    /// row and ends the job there; a job that cannot be prepared (its mapping
    /// gone, a schedule that never fires) is left as it is, for an attempt to report.
    public func prepareAtCreation(_ job: inout PlannedJob) {
        guard job.initialState == .pending, case .ready(let staging) = prepare(mapping: job.mapping, payload: job.payload) else { return }
        job.stagedAtCreation = staging
    }

    /// The row's staging, read from the job's payload, or the outcome an attempt reports.
    enum Preparation {
        case ready(RowStaging)
        case cannot(AttemptOutcome)
    }

    /// One rule for both ways a row is staged (at creation, by an attempt).
    func prepare(mapping name: String, payload: JSONValue) -> Preparation {
        guard let mapping = registry.current.mapping(named: name), case .csv(let csv) = mapping.target else {
            return .cannot(.held(.mappingNotLoaded(mapping: name)))
        }
        guard let rowKey = payload["row_key"]?.stringValue, let row = payload["row"] else {
            return .cannot(.permanent(reason: "stored row is not valid"))
        }
        let receivedMilliseconds = payload["received_at"]?.stringValue.flatMap(MappingClock.milliseconds(fromISO8601:)) ?? clock.now().milliseconds
        let schedule: CronSchedule
        do {
            schedule = try CSVExporter.schedule(of: csv, mapping: mapping.name)
        } catch {
            return .cannot(.held(.configuration("\(error)")))
        }
        let nowSeconds = clock.now().milliseconds / 1000
        guard let period = periods.period(schedule, containing: receivedMilliseconds / 1000),
            let open = periods.period(schedule, containing: nowSeconds)
        else {
            return .cannot(.held(.configuration("\(mapping.name): the schedule never fires")))
        }
        return .ready(
            RowStaging(
                mapping: mapping.name, period: CSVPeriod(start: period.start, end: period.end),
                openPeriod: CSVPeriod(start: open.start, end: open.end), rowKey: rowKey,
                receivedAt: Timestamp(milliseconds: receivedMilliseconds), row: row, policy: CSVResendPolicy(rawValue: csv.onResend) ?? .skip))
    }
}

/// Exports every CSV mapping's ended periods on schedule, catching up on
/// periods missed while the daemon was down.
public struct CSVExportService: Service {
    let registry: MappingRegistry
    let exporter: CSVExporter
    let uploader: CSVUploader?
    let io: BlockingIOPool
    let clock: any WallClock
    let owner: String
    let logger: Logger

    /// `owner` names this process in period claims (a claim older than ten
    /// minutes may be taken over); exports run on `io`; `uploader` delivers
    /// the files of `sftp://` mappings.
    public init(
        registry: MappingRegistry, exporter: CSVExporter, uploader: CSVUploader? = nil, io: BlockingIOPool, clock: any WallClock, owner: String,
        logger: Logger
    ) {
        self.registry = registry
        self.io = io
        self.exporter = exporter
        self.uploader = uploader
        self.clock = clock
        self.owner = owner
        self.logger = logger
    }

    /// Exports what is due, then sleeps until the next period closes (at most a
    /// minute), until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Exports read the store and write files synchronously (a big period
                // takes seconds): off the cooperative pool, which serves webhooks.
                let next: Timestamp?
                do throws(IOFailure) {
                    next = try await io.run { [self] in tick() }
                } catch {
                    return
                }
                // Files for sftp:// folders go out right after their export, and failed ones when due.
                let nextUpload = await uploader?.processDue()
                let cap = clock.now().adding(.seconds(60))
                let wake = [next, nextUpload].compactMap { $0 }.reduce(cap) { min($0, $1) }
                do {
                    try await clock.sleep(until: wake)
                } catch {
                    return
                }
            }
        }
    }

    /// Exports what is due; returns when the next period closes.
    @discardableResult
    public func tick() -> Timestamp? {
        let now = clock.now().milliseconds / 1000
        var next: Int64?
        // One snapshot for the whole tick: a reload meanwhile cannot pair a
        // mapping with another set's variables in a file name.
        let mappings = registry.current
        let exporter = self.exporter.pinned(to: mappings)
        for mapping in mappings.mappings where mapping.enabled {
            guard case .csv(let csv) = mapping.target else { continue }
            do {
                for period in try exporter.duePeriods(mapping, csv, now: now) {
                    try exporter.export(mapping, csv, period: period, owner: owner, now: now, logger: logger)
                }
                if let fire = try CSVExporter.schedule(of: csv, mapping: mapping.name).next(after: now) {
                    next = min(next ?? fire, fire)
                }
            } catch {
                // Retried at the next tick (at most a minute later); reported every time.
                logger.error("csv export failed; will retry", metadata: ["mapping": "\(mapping.name)", "error": "\(error)"])
            }
        }
        return next.map { Timestamp(seconds: $0) }
    }
}

/// Remembers the most recent periods of each schedule.
final class PeriodCache: Sendable {
    private let entries = Mutex<[CronSchedule: [(start: Int64, end: Int64)]]>([:])

    func period(_ schedule: CronSchedule, containing instant: Int64) -> (start: Int64, end: Int64)? {
        if let hit = entries.withLock({ $0[schedule]?.first { $0.start <= instant && instant < $0.end } }) { return hit }
        guard let computed = schedule.period(containing: instant) else { return nil }
        entries.withLock { cache in
            var list = cache[schedule] ?? []
            list.insert(computed, at: 0)
            cache[schedule] = Array(list.prefix(4))
        }
        return computed
    }
}

/// The one record writer a file uses: CSV or fixed-width.
struct RecordWriter {
    var csv: CSVWriter?
    var fixed: FixedWidthWriter?
    let guards: [Bool]
    let quotes: [Bool]

    init(_ target: CSVTarget) {
        guards = target.columns.map(\.formulaGuard)
        quotes = target.columns.map { $0.type == .text }
        switch target.format {
        case .csv:
            csv = CSVWriter(format: CSVExporter.format(of: target))
        case .fixedWidth:
            let terminator: [UInt8] = target.lineEnding == "crlf" ? [0x0D, 0x0A] : target.lineEnding == "lf" ? [0x0A] : []
            fixed = FixedWidthWriter(
                fields: target.columns.map { $0.fixed ?? FixedWidthField(width: 1, alignRight: false, pad: 0x20, cut: true) },
                terminator: terminator, encoder: CSVExporter.encoder(of: target))
        }
    }

    var bufferedBytes: Int { csv?.buffer.count ?? fixed?.buffer.count ?? 0 }

    /// One record; returns (column, change) for the report. A CSV header is quoted like text cells, never guarded.
    mutating func write(_ fields: [String], header: Bool) throws(FixedWidthWriter.Problem) -> [(Int, String)] {
        // Mutated in place through the optional (a copy would copy the buffer per row).
        if csv != nil {
            do throws(UnencodableCharacter) {
                let changes =
                    try csv?.writeRow(fields, guardFormulas: header ? [] : guards, alwaysQuote: header ? fields.map { _ in true } : quotes) ?? []
                return changes.map { ($0.column, "\($0)") }
            } catch {
                throw .unencodable(error)
            }
        }
        guard let (encoding, layout) = try fixed?.writeRow(fields) else { return [] }
        return encoding.map { ($0.column, "\($0)") } + layout.map { ($0.column, $0.what) }
    }

    mutating func flush(_ sink: ([UInt8]) throws -> Void) rethrows {
        try csv?.flush(sink)
        try fixed?.flush(sink)
    }
}
