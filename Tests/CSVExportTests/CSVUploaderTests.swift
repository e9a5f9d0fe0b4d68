import Crypto
import DurableFiles
import Foundation
import JSON
import Logging
import Mapping
import TestServers
import Testing

@testable import CSVExport
@testable import Clocks
@testable import CurlClient
@testable import Domain
@testable import StoreSQLite
@testable import TestSupport

/// Nightly files dropped on a real OpenSSH server: export, upload under a
/// temporary name, rename, marker, record; failures retried with backoff.
@Suite("CSV files delivered to an SFTP folder", .serialized)
struct CSVUploaderTests {
    struct Setup {
        let server: LocalSSHServer
        let store: SQLiteStore
        let clock: ManualWallClock
        let registry: MappingRegistry
        let service: CSVExportService
        let uploader: CSVUploader
        let executor: CSVExecutor
        let engine: CurlEngine
        let mapping: MappingFile
    }

    static let mappingText = """
        {"name": "hires", "when": {"event": "candidate/new"},
         "csv": {"file": "${SFTP_URL}/hires-{{ period.date }}.csv", "schedule": "0 2 * * *", "time_zone": "Europe/Stockholm",
                 "delimiter": ";", "encoding": "latin1", "done_marker": true,
                 "sftp": {"user": "${SFTP_USER}", "private_key_file": "${SFTP_KEY}", "known_hosts": "${SFTP_KNOWN_HOSTS}"},
                 "columns": [{"name": "id", "value": "{{ candidate.id }}"}, {"name": "name", "value": "{{ candidate.first_name }}"}]}}
        """

    static func variables(_ server: LocalSSHServer, readOnly: Bool = false, knownHosts: String? = nil, data: String) -> VariableSource {
        VariableSource(
            environment: [
                "SFTP_URL": "sftp://127.0.0.1:\(readOnly ? server.readOnlyPort : server.port)\(server.files)", "SFTP_USER": server.user,
                "SFTP_KEY": server.userKey, "SFTP_KNOWN_HOSTS": knownHosts ?? server.knownHosts,
            ], dataDirectory: data)
    }

    static func setup(readOnly: Bool = false, knownHosts: ((LocalSSHServer) -> String)? = nil) throws -> Setup {
        let server = try LocalSSHServer()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-sftp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        let store = try SQLiteStore(directory: root + "/data", logger: Logger(label: "test"))
        let (compiled, diagnostics) = MappingCompiler.compile(file: "hires.json", bytes: Array(mappingText.utf8))
        let mapping = try #require(compiled, "\(diagnostics)")
        let registry = MappingRegistry(
            MappingSet(mappings: [mapping], variables: variables(server, readOnly: readOnly, knownHosts: knownHosts?(server), data: root + "/data")))
        let clock = ManualWallClock(now: Timestamp(seconds: Int64(CivilCalendar.daysFromCivil(2026, 3, 27)) * 86_400 + 12 * 3600))
        let io = BlockingIOPool(threads: 2)
        let engine = CurlEngine()
        let uploader = CSVUploader(
            store: store, registry: registry, client: CurlClient(engine: engine), io: io, clock: clock, logger: Logger(label: "test"))
        let exporter = CSVExporter(store: store, registry: registry, outbox: root + "/data/outbox")
        let service = CSVExportService(
            registry: registry, exporter: exporter, uploader: uploader, io: io, clock: clock, owner: "daemon", logger: Logger(label: "test"))
        return Setup(
            server: server, store: store, clock: clock, registry: registry, service: service, uploader: uploader,
            executor: CSVExecutor(registry: registry, store: store, clock: clock), engine: engine, mapping: mapping)
    }

    /// Stages two rows and exports their period; returns the upload the export recorded.
    static func export(_ s: Setup) async throws -> FileUpload {
        _ = s.service.tick()
        for (id, name) in [("p1", "Åsa"), ("p2", "Łukasz")] {
            let payload: JSONValue = [
                "row_key": .string(id), "received_at": .string(MappingClock.iso8601(milliseconds: s.clock.now().milliseconds)),
                "row": ["id": .string(id), "name": .string(name)],
            ]
            let job = ClaimedJob(
                id: Int64.random(in: 1...Int64.max), eventID: 1, mapping: "hires", item: "", kind: "csv", effectKey: id,
                payload: JSONWriter.bytes(payload), attempt: 1, companyID: "c", subjectID: id)
            _ = await s.executor.execute(job, logger: Logger(label: "test"))
        }
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        let uploads = try s.store.csvUploads(mapping: "hires")
        #expect(uploads.count == 1)
        return try #require(uploads.first)
    }

    static let expected = Array("\"id\";\"name\"\r\n\"p1\";\"".utf8) + [0xC5] + Array("sa\"\r\n\"p2\";\"Lukasz\"\r\n".utf8)

    static func remote(_ s: Setup, _ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: s.server.files + "/" + name).map { [UInt8]($0) }
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test func theFileIsUploadedRenamedMarkedAndRecorded() async throws {
        let s = try Self.setup()
        let pending = try await Self.export(s)
        #expect(pending.state == .pending && pending.remoteURL.hasSuffix("/hires-2026-03-27.csv"))
        let local = try #require(pending.localPath)
        #expect(FileManager.default.contents(atPath: local).map { [UInt8]($0) } == Self.expected, "the outbox holds the file first")
        let localMode = try FileManager.default.attributesOfItem(atPath: local)[.posixPermissions] as? Int
        #expect(localMode == 0o600)
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Self.expected)
        #expect(Self.remote(s, "hires-2026-03-27.csv.done") == [])
        #expect(Self.remote(s, ".hires-2026-03-27.csv.part") == nil, "no temporary file is left")
        let uploaded = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(uploaded.state == .uploaded && uploaded.attempts == 0 && uploaded.uploadedAt != nil)
        #expect(uploaded.size == Int64(Self.expected.count) && uploaded.sha256 == Self.sha256(Self.expected))
        #expect(uploaded.localPath == nil && !FileManager.default.fileExists(atPath: local), "the local copy is removed")
        // Nothing more to do, and the period is never exported again.
        #expect(try s.store.csvUploadsToProcess(now: s.clock.now().milliseconds / 1000).isEmpty)
        _ = s.service.tick()
        #expect(try s.store.csvUploads(mapping: "hires").count == 1)
        await s.engine.shutdown()
    }

    @Test func aServerThatIsDownIsRetriedWithBackoffAndTheFileGoesOnce() async throws {
        let s = try Self.setup()
        s.server.stop()
        let pending = try await Self.export(s)
        await s.uploader.processDue()
        let failed = try #require(try s.store.csvUploads(mapping: "hires").first)
        let now = s.clock.now().milliseconds / 1000
        #expect(failed.state == .pending && failed.attempts == 1 && failed.nextAttemptAt >= now + 30)
        #expect(failed.lastError?.contains("unreachable") == true, "\(failed.lastError ?? "")")
        // Not due yet: nothing is tried.
        await s.uploader.processDue()
        #expect(try s.store.csvUploads(mapping: "hires").first?.attempts == 1)
        // Down again at the next attempt: the wait doubles.
        s.clock.advance(by: .seconds(30))
        await s.uploader.processDue()
        let second = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(second.attempts == 2 && second.nextAttemptAt >= s.clock.now().milliseconds / 1000 + 60)
        try s.server.start()
        s.clock.advance(by: .seconds(60))
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Self.expected)
        #expect(try s.store.csvUploads(mapping: "hires").first?.state == .uploaded)
        #expect(pending.sha256 == Self.sha256(Self.expected), "the same bytes as exported, not a second export")
        await s.engine.shutdown()
    }

    @Test func aChangedHostKeyRefusesTheUploadUntilThePinIsFixed() async throws {
        let s = try Self.setup(knownHosts: { $0.wrongKnownHosts })
        _ = try await Self.export(s)
        await s.uploader.processDue()
        let refused = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(refused.state == .pending && refused.attempts == 1)
        #expect(refused.lastError?.contains("host key") == true, "\(refused.lastError ?? "")")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: s.server.files)) == [], "nothing reached the server")
        // The operator fixes known_hosts (SIGHUP reloads the variables).
        s.registry.replace(
            with: MappingSet(mappings: [s.mapping], variables: Self.variables(s.server, data: s.registry.current.variables.dataDirectory ?? "")))
        s.clock.advance(by: .seconds(30))
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Self.expected)
        await s.engine.shutdown()
    }

    @Test func permissionDeniedIsRetriedAndWritesNothing() async throws {
        let s = try Self.setup(readOnly: true)
        _ = try await Self.export(s)
        await s.uploader.processDue()
        let refused = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(refused.attempts == 1 && refused.lastError?.contains("permission denied") == true, "\(refused.lastError ?? "")")
        #expect(Self.remote(s, "hires-2026-03-27.csv") == nil && Self.remote(s, ".hires-2026-03-27.csv.part") == nil)
        #expect(refused.localPath.map { FileManager.default.fileExists(atPath: $0) } == true, "the local copy waits")
        await s.engine.shutdown()
    }

    @Test func anExistingFileUnderTheFinalNameIsNeverOverwritten() async throws {
        let s = try Self.setup()
        _ = try await Self.export(s)
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: s.server.files + "/hires-2026-03-27.csv"))
        await s.uploader.processDue()
        let refused = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(refused.state == .staged && refused.attempts == 1)
        #expect(refused.lastError?.contains("already exists") == true, "\(refused.lastError ?? "")")
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Array("someone else's".utf8))
        // Moved away by the operator: the staged file is renamed into place, not uploaded again.
        try FileManager.default.removeItem(atPath: s.server.files + "/hires-2026-03-27.csv")
        s.clock.advance(by: .seconds(30))
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Self.expected)
        #expect(try s.store.csvUploads(mapping: "hires").first?.state == .uploaded)
        await s.engine.shutdown()
    }

    /// A crash after the rename but before `uploaded` was recorded: the
    /// importer may already have taken the file away. The missing temporary
    /// file says the rename happened: nothing is sent again.
    @Test func aCrashAfterTheRenameNeverSendsTheFileTwice() async throws {
        let s = try Self.setup()
        var upload = try await Self.export(s)
        upload.state = .staged  // as recorded before the rename; the file went out and was imported since
        try s.store.recordCSVUpload(upload)
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == nil, "not uploaded a second time")
        #expect(Self.remote(s, "hires-2026-03-27.csv.done") == [], "the marker is still written")
        #expect(try s.store.csvUploads(mapping: "hires").first?.state == .uploaded)
        await s.engine.shutdown()
    }

    /// A crash after the temporary file was recorded but before the rename: it is renamed, not sent again.
    @Test func aCrashBeforeTheRenameRenamesTheStagedFile() async throws {
        let s = try Self.setup()
        var upload = try await Self.export(s)
        try Data(Self.expected).write(to: URL(fileURLWithPath: s.server.files + "/.hires-2026-03-27.csv.part"))
        upload.state = .staged
        upload.localPath.map { try? FileManager.default.removeItem(atPath: $0) }  // even without the local copy
        try s.store.recordCSVUpload(upload)
        await s.uploader.processDue()
        #expect(Self.remote(s, "hires-2026-03-27.csv") == Self.expected)
        #expect(Self.remote(s, ".hires-2026-03-27.csv.part") == nil)
        #expect(try s.store.csvUploads(mapping: "hires").first?.state == .uploaded)
        await s.engine.shutdown()
    }

    /// A redo of the period while its old file is on the way: the old
    /// upload's records no longer apply (compare-and-set on the file's
    /// SHA-256), the redo's file is the one delivered, the old copy is removed.
    @Test func aRedoMeanwhileWinsOverTheOldUpload() async throws {
        let s = try Self.setup()
        let first = try await Self.export(s)
        // The operator fixes a row and redoes the period before the daemon uploaded it.
        _ = try await s.store.stage(
            mapping: "hires", period: CSVPeriod(start: first.periodStart, end: first.periodStart + 86_400),
            openPeriod: CSVPeriod(start: first.periodStart, end: first.periodStart + 86_400), rowKey: "p3",
            receivedAt: Timestamp(milliseconds: 0), jobID: 99, row: ["id": "p3", "name": "Zoë"], policy: .always, companyID: "c", subjectID: "p3")
        let outbox = ((first.localPath ?? "") as NSString).deletingLastPathComponent
        let exporter = CSVExporter(store: s.store, registry: s.registry, outbox: (outbox as NSString).deletingLastPathComponent)
        try exporter.export(
            s.mapping, try Self.csvTarget(s), period: CSVPeriod(start: first.periodStart, end: first.periodStart + 86_400), owner: "cli",
            now: s.clock.now().milliseconds / 1000, redo: true, logger: Logger(label: "test"))
        let redone = try #require(try s.store.csvUploads(mapping: "hires").first)
        #expect(redone.sha256 != first.sha256 && redone.localPath != first.localPath)
        #expect(!FileManager.default.fileExists(atPath: first.localPath ?? ""), "the replaced local copy is removed")
        // The old upload's records are refused: nothing it did can overwrite the redo's record.
        var stale = first
        stale.state = .uploaded
        #expect(try s.store.recordCSVUpload(stale) == false)
        await s.uploader.processDue()
        let delivered = try #require(Self.remote(s, "hires-2026-03-27.csv"))
        #expect(Self.sha256(delivered) == redone.sha256 && String(decoding: delivered, as: UTF8.self).contains("\"p3\""))
        await s.engine.shutdown()
    }

    static func csvTarget(_ s: Setup) throws -> CSVTarget {
        guard case .csv(let csv) = s.mapping.target else { throw CSVExportError.noOutbox(mapping: "not a csv mapping") }
        return csv
    }

    @Test func aFileNameTheUploadCouldNeverUseIsRefusedAtExport() async throws {
        let s = try Self.setup()
        var variables = s.registry.current.variables
        variables.environment["SFTP_URL"] = "sftp://127.0.0.1:\(s.server.port)\(s.server.files)/pay roll"
        s.registry.replace(with: MappingSet(mappings: [s.mapping], variables: variables))
        _ = s.service.tick()
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        #expect(try s.store.csvUploads(mapping: "hires").isEmpty, "nothing recorded for a URL with a space")
        #expect(
            try !s.store.csvPeriodExported(mapping: "hires", periodStart: try Self.periodStart(s)), "the period stays open to be exported after a fix"
        )
        await s.engine.shutdown()
    }

    static func periodStart(_ s: Setup) throws -> Int64 {
        let schedule = try CronSchedule("0 2 * * *", timeZone: "Europe/Stockholm")
        return schedule.previous(before: s.clock.now().milliseconds / 1000).map { schedule.previous(before: $0) ?? $0 } ?? 0
    }
}
