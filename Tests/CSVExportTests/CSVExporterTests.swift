import DurableFiles
import Foundation
import JSON
import Logging
import Mapping
import Testing

@testable import CSVExport
@testable import Clocks
@testable import Domain
@testable import StoreSQLite
@testable import TestSupport

@Suite("CSV staging and export on a real store and a manual clock", .serialized)
struct CSVExportTests {
    struct Setup {
        let store: SQLiteStore
        let clock: ManualWallClock
        let registry: MappingRegistry
        let exportDir: String
        let service: CSVExportService
        let executor: CSVExecutor
    }

    static func setup(
        onResend: String = "skip", emptyPeriod: String = "header", startUTC: (Int, Int, Int, Int) = (2026, 3, 27, 12),
        share: String = "", doneMarker: Bool = false, encoding: String? = nil, columns: String? = nil
    ) throws -> Setup {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-csv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        let store = try SQLiteStore(directory: root + "/data", logger: Logger(label: "test"))
        let text = """
            {"name": "hires", "when": {"event": "candidate/new"},
             "csv": {"file": "${EXPORT_DIR}/hires-{{ period.date }}.csv", "schedule": "0 2 * * *", "time_zone": "Europe/Stockholm",
                     "delimiter": ";", \(encoding ?? #""bom": true"#), "on_resend": "\(onResend)", "empty_period": "\(emptyPeriod)", "done_marker": \(doneMarker),
                     "columns": \(columns ?? defaultColumns)}}
            """
        let (mapping, diagnostics) = MappingCompiler.compile(file: "hires.json", bytes: Array(text.utf8))
        if diagnostics.contains(where: { $0.severity == .error }) { throw SetupError(text: "\(diagnostics)") }
        guard let mapping else { throw SetupError(text: "\(diagnostics)") }
        let exportDir = root + share + "/exports"
        let variables = VariableSource(environment: ["EXPORT_DIR": exportDir], dataDirectory: root + "/data")
        let registry = MappingRegistry(MappingSet(mappings: [mapping], variables: variables))
        let (y, m, d, h) = startUTC
        let clock = ManualWallClock(now: Timestamp(seconds: Int64(CivilCalendar.daysFromCivil(y, m, d)) * 86_400 + Int64(h * 3600)))
        let exporter = CSVExporter(store: store, registry: registry)
        let service = CSVExportService(
            registry: registry, exporter: exporter, io: BlockingIOPool(threads: 1), clock: clock, owner: "daemon", logger: Logger(label: "test"))
        return Setup(
            store: store, clock: clock, registry: registry, exportDir: exportDir, service: service,
            executor: CSVExecutor(registry: registry, store: store, clock: clock))
    }

    static let defaultColumns = """
        [{"name": "id", "value": "{{ candidate.id }}"}, {"name": "name", "value": "{{ candidate.first_name }}"},
         {"name": "note", "value": "{{ candidate.message }}"}]
        """

    struct SetupError: Error { var text: String }

    /// Runs the executor on a rendered row as the runner would.
    @discardableResult
    static func stage(
        _ s: Setup, id: String, name: String = "", note: String = "", receivedAt: Timestamp? = nil, row: JSONValue? = nil
    ) async -> AttemptOutcome {
        let received = receivedAt ?? s.clock.now()
        let row: JSONValue = row ?? ["id": .string(id), "name": .string(name), "note": .string(note)]
        let payload: JSONValue = .object(
            JSONObject([
                .init(key: "row_key", value: .string(id)),
                .init(key: "received_at", value: .string(MappingClock.iso8601(milliseconds: received.milliseconds))),
                .init(key: "row", value: row),
            ]))
        let jobID = Int64.random(in: 1...Int64.max)
        let job = ClaimedJob(
            id: jobID, eventID: jobID, mapping: "hires", item: "", kind: "csv", effectKey: id,
            payload: JSONWriter.bytes(payload), attempt: 1, companyID: "c", subjectID: id)
        return await s.executor.execute(job, logger: Logger(label: "test"))
    }

    static func files(_ s: Setup) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: s.exportDir)) ?? []).sorted()
    }

    static func read(_ s: Setup, _ name: String) -> String {
        String(decoding: FileManager.default.contents(atPath: s.exportDir + "/" + name) ?? Data(), as: UTF8.self)
    }

    @Test func theNightlyFileHasTheLatestRowPerKeyAndIsWrittenOnce() async throws {
        let s = try Self.setup()
        _ = s.service.tick()  // first sight: the schedule starts now
        await Self.stage(s, id: "p1", name: "Bruce")
        await Self.stage(s, id: "p2", name: "Åsa", note: "=HYPERLINK(\"x\")")
        // A re-send of p1 received later replaces its row, even if its job runs first.
        let later = s.clock.now().adding(.seconds(60))
        await Self.stage(s, id: "p1", name: "Bruce Wayne", receivedAt: later)
        await Self.stage(s, id: "p1", name: "stale", receivedAt: s.clock.now())
        #expect(Self.files(s).isEmpty)
        s.clock.advance(by: .seconds(18 * 3600))  // past 02:00 Stockholm
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"])
        let bytes = FileManager.default.contents(atPath: s.exportDir + "/hires-2026-03-27.csv") ?? Data()
        #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
        #expect(
            Self.read(s, "hires-2026-03-27.csv").dropFirst()
                == "\"id\";\"name\";\"note\"\r\n\"p1\";\"Bruce Wayne\";\"\"\r\n\"p2\";\"Åsa\";\"'=HYPERLINK(\"\"x\"\")\"\r\n")
        let mode = try FileManager.default.attributesOfItem(atPath: s.exportDir + "/hires-2026-03-27.csv")[.posixPermissions] as? Int
        #expect(mode == 0o640)
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"], "no temp files, no second file")
    }

    @Test func catchUpExportsEveryMissedPeriodOnceAcrossTheSpringNight() async throws {
        let s = try Self.setup()
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: "One")
        s.clock.advance(by: .seconds(Int64(4 * 86_400)))  // down over four nights, including 2026-03-29 (DST)
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv", "hires-2026-03-28.csv", "hires-2026-03-29.csv", "hires-2026-03-30.csv"])
        #expect(Self.read(s, "hires-2026-03-28.csv").dropFirst() == "\"id\";\"name\";\"note\"\r\n", "an empty period gets a header-only file")
        _ = s.service.tick()
        #expect(Self.files(s).count == 4)
    }

    @Test("a re-send after its period was exported follows the policy", arguments: [("skip", 0), ("always", 1), ("include_if_changed", 1)])
    func resendAfterExport(policy: String, expectedRows: Int) async throws {
        let s = try Self.setup(onResend: policy)
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: "Bruce")
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: policy == "include_if_changed" ? "Bruce W." : "Bruce")
        if policy == "include_if_changed" {
            await Self.stage(s, id: "p2", name: "x")  // unrelated row to show the file is written
        }
        s.clock.advance(by: .seconds(86_400))
        _ = s.service.tick()
        let second = Self.read(s, "hires-2026-03-28.csv")
        let p1Rows = second.components(separatedBy: "\r\n").filter { $0.hasPrefix("\"p1\";") }.count
        #expect(p1Rows == expectedRows, "\(policy): \(second)")
        if policy == "include_if_changed" {
            // Unchanged content is not sent again.
            await Self.stage(s, id: "p1", name: "Bruce W.")
            s.clock.advance(by: .seconds(86_400))
            _ = s.service.tick()
            #expect(!Self.read(s, "hires-2026-03-29.csv").contains("\"p1\";"))
        }
    }

    @Test func anUnavailableFolderIsRetriedAndNeverLeavesAPartialFile() async throws {
        // The export folder lives on a share that is not mounted yet.
        let s = try Self.setup(share: "/share")
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: "Bruce")
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        let share = (s.exportDir as NSString).deletingLastPathComponent
        #expect(!FileManager.default.fileExists(atPath: share), "the bridge must not create a missing mount point")
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: false)
        s.clock.advance(by: .seconds(60))
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"])
        #expect(Self.read(s, "hires-2026-03-27.csv").contains("\"p1\";\"Bruce\""))
    }

    @Test func theFinalNameNeverShowsAPartialFile() async throws {
        let s = try Self.setup(emptyPeriod: "none", doneMarker: true)
        _ = s.service.tick()
        guard case .csv(let csv)? = s.registry.current.mapping(named: "hires")?.target else {
            Issue.record("no csv mapping")
            return
        }
        let period = try #require(try CSVExporter.schedule(of: csv, mapping: "hires").period(containing: s.clock.now().milliseconds / 1000))
        // 150,000 staged rows straight into the table, then watch the folder while the export runs.
        try await s.store.database.write { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT INTO csv_rows(mapping, period_start, period_end, row_key, received_at, job_id, row, row_hash) VALUES ('hires', ?, ?, ?, 0, 0, ?, x'00')
                    """)
            for i in 0..<150_000 {
                try statement.execute(arguments: [
                    period.start, period.end, String(format: "k%07d", i),
                    Data(#"{"id":"p\#(i)","name":"Name \#(i), with comma","note":"line1\nline2"}"#.utf8),
                ])
            }
        }
        let target = s.exportDir + "/hires-2026-03-27.csv"
        let watcher = Task.detached { () -> [Int] in
            var sizes: [Int] = []
            while !Task.isCancelled {
                if let size = (try? FileManager.default.attributesOfItem(atPath: target))?[.size] as? Int { sizes.append(size) }
                try? await Task.sleep(for: .microseconds(200))
            }
            return sizes
        }
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        try await Task.sleep(for: .milliseconds(20))
        watcher.cancel()
        let seen = await watcher.value
        let final = try #require((try FileManager.default.attributesOfItem(atPath: target))[.size] as? Int)
        #expect(seen.allSatisfy { $0 == final }, "a partial file was visible under the final name")
        #expect(Self.files(s) == ["hires-2026-03-27.csv", "hires-2026-03-27.csv.done"])
        #expect(Self.read(s, "hires-2026-03-27.csv").components(separatedBy: "\r\n").count == 150_000 + 2)
    }

    @Test func anEmptyPeriodWithNoneWritesNoFile() async throws {
        let s = try Self.setup(emptyPeriod: "none")
        _ = s.service.tick()
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        #expect(Self.files(s).isEmpty)
        #expect(
            try s.store.csvPeriodExported(mapping: "hires", periodStart: try #require(try s.store.csvLastExportedEnd(mapping: "hires")) - 86_400)
                == true)
    }

    /// `unencodable: fail` holds the period's file back whole; once the mapping
    /// allows transliteration (a reload), the period is written once, complete.
    @Test func anUnencodableNameHoldsThePeriodBackUntilTheMappingAllowsIt() async throws {
        let s = try Self.setup(encoding: #""encoding": "latin1", "unencodable": "fail""#)
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: "Åsa")
        await Self.stage(s, id: "p2", name: "Şükrü")
        s.clock.advance(by: .seconds(18 * 3600))
        _ = s.service.tick()
        #expect(Self.files(s).isEmpty, "no file, not even a partial one")
        _ = s.service.tick()
        #expect(Self.files(s).isEmpty)
        let current = s.registry.current
        let fixedText = """
            {"name": "hires", "when": {"event": "candidate/new"},
             "csv": {"file": "${EXPORT_DIR}/hires-{{ period.date }}.csv", "schedule": "0 2 * * *", "time_zone": "Europe/Stockholm",
                     "delimiter": ";", "encoding": "iso-8859-1",
                     "columns": \(Self.defaultColumns)}}
            """
        let fixed = try #require(MappingCompiler.compile(file: "hires.json", bytes: Array(fixedText.utf8)).0)
        s.registry.replace(with: MappingSet(mappings: [fixed], variables: current.variables))
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"])
        let bytes = [UInt8](FileManager.default.contents(atPath: s.exportDir + "/hires-2026-03-27.csv") ?? Data())
        #expect(
            bytes == Array("\"id\";\"name\";\"note\"\r\n\"p1\";\"".utf8) + [0xC5] + Array("sa\";\"\"\r\n\"p2\";\"S".utf8) + [0xFC] + Array("kr".utf8)
                + [0xFC] + Array("\";\"\"\r\n".utf8)
        )
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"], "written once")
    }

    @Test func theUnencodableErrorNamesRowColumnAndCharacterOnly() {
        let error = CSVExportError.unencodable(mapping: "hires", row: 2, column: "name", character: "Ş", encoding: .latin1)
        #expect(
            error.description
                == "ALERT hires: data row 2, column name: U+015E cannot be written in iso-8859-1 (unencodable: fail); the period's file is held back until the mapping allows it"
        )
    }

    /// A reload during a tick must not pair a mapping with another set's variables.
    @Test func aPinnedExporterKeepsItsSnapshotsVariables() throws {
        let s = try Self.setup()
        let mapping = try #require(s.registry.current.mapping(named: "hires"))
        guard case .csv(let csv) = mapping.target else { return }
        let pinned = CSVExporter(store: s.store, registry: s.registry).pinned(to: s.registry.current)
        s.registry.replace(with: MappingSet(mappings: [mapping], variables: VariableSource(environment: ["EXPORT_DIR": "/elsewhere"])))
        let zone = try #require(TimeZone(identifier: "UTC"))
        let name = try pinned.fileName(mapping, csv, period: CSVPeriod(start: 0, end: 86_400), zone: zone, now: 0)
        #expect(name.hasPrefix(s.exportDir + "/"))
        let unpinned = try CSVExporter(store: s.store, registry: s.registry).fileName(
            mapping, csv, period: CSVPeriod(start: 0, end: 86_400), zone: zone, now: 0)
        #expect(unpinned.hasPrefix("/elsewhere/"))
    }

    @Test func aClaimedPeriodIsNotExportedTwice() async throws {
        let s = try Self.setup()
        _ = s.service.tick()
        await Self.stage(s, id: "p1", name: "Bruce")
        s.clock.advance(by: .seconds(18 * 3600))
        let now = s.clock.now().milliseconds / 1000
        let exporter = CSVExporter(
            store: s.store, registry: MappingRegistry(MappingSet(mappings: [], variables: VariableSource(environment: ["EXPORT_DIR": s.exportDir]))))
        guard case .csv(let csv) = try #require(s.registry.current.mapping(named: "hires")).target else { return }
        let mapping = try #require(s.registry.current.mapping(named: "hires"))
        let due = try exporter.duePeriods(mapping, csv, now: now)
        #expect(due.count == 1)
        // A hand export claims the period first; the daemon then finds nothing to do.
        #expect(try s.store.claimCSVExport(mapping: "hires", period: due[0], owner: "cli:1", now: now, staleAfter: 600, redo: false))
        _ = s.service.tick()
        #expect(Self.files(s).isEmpty)
        // A stale claim (a crashed hand export) is taken over after ten minutes.
        s.clock.advance(by: .seconds(601))
        _ = s.service.tick()
        #expect(Self.files(s) == ["hires-2026-03-27.csv"])
    }
}
