import ArgumentParser
import BridgeApp
import CSVExport
import Clocks
import Domain
import Foundation
import Logging
import Mapping
import StoreSQLite

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write CSV files of a csv mapping by hand (works while the daemon runs).",
        discussion: """
            Without options: every ended period not yet exported (as the daemon would). --period DATE \
            re-creates the file of the period that starts on that local date (or contains that time). --now \
            writes the open period's rows so far to the file name with -partial-<timestamp> before the \
            extension, leaving the period open.
            """
    )

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: ArgumentHelp("Mapping name (in the mappings directory).", valueName: "name")) var mapping: String
    @Option(name: .long, help: ArgumentHelp("A local date (yyyy-MM-dd) or time in the period to re-create.", valueName: "date")) var period: String?
    @Flag(help: "Write the open period so far as a -partial- file.") var now = false
    @Option(name: .long, help: ArgumentHelp("Mappings directory (default: the configuration's).", valueName: "dir")) var mappings: String?

    func validate() throws {
        if period != nil && now { throw ValidationError("give --period or --now, not both") }
    }

    func run() throws {
        let (sqlite, config) = try OperatorStore.open(store)
        defer { sqlite.close() }
        let (set, errors, _) = MappingLoader.load(
            directory: mappings ?? config.mappingsDir, variables: BridgeApplication.variables(for: config), strict: false
        ) { print($0) }
        guard errors == 0 else { throw ExitCode(1) }
        guard let file = set.mapping(named: mapping), case .csv(let csv) = file.target else {
            throw ValidationError("no csv mapping named \(mapping)")
        }
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = .warning
        let exporter = CSVExporter(store: sqlite, registry: MappingRegistry(set))
        let schedule = try CSVExporter.schedule(of: csv, mapping: mapping)
        let zone = schedule.zone
        let nowSeconds = OperatorStore.now.milliseconds / 1000
        let owner = "cli:\(getpid())"
        let progress: (Int) -> Void = { rows in FileHandle.standardError.write(Data("… \(rows) rows\n".utf8)) }

        if now {
            guard let open = schedule.period(containing: nowSeconds) else { throw ValidationError("the schedule never fires") }
            let period = CSVPeriod(start: open.start, end: open.end)
            let name = try exporter.fileName(file, csv, period: period, zone: zone, now: nowSeconds)
            let stamp = MappingClock.iso8601(milliseconds: nowSeconds * 1000).replacingOccurrences(of: ":", with: "").replacingOccurrences(
                of: ".000", with: "")
            let ext = (name as NSString).pathExtension
            let partial = ((name as NSString).deletingPathExtension) + "-partial-\(stamp)" + (ext.isEmpty ? "" : "." + ext)
            let rows = try exporter.write(file, csv, period: period, to: partial, progress: progress)
            print("\(partial)\t\(rows ?? 0) row(s) (period still open)")
            return
        }
        if let text = period {
            let probe: Int64
            if let ms = MappingClock.milliseconds(fromISO8601: text), text.count > 10 {
                probe = ms / 1000
            } else {
                let parts = text.split(separator: "-").compactMap { Int($0) }
                guard parts.count == 3 else { throw ValidationError("--period takes yyyy-MM-dd or an ISO-8601 time") }
                // Noon local time on that date lies in the period that starts that day.
                let instants = CivilCalendar.instants(of: .init(year: parts[0], month: parts[1], day: parts[2], hour: 12), in: zone)
                guard let noon = instants.first else { throw ValidationError("no such local time") }
                probe = noon
            }
            guard let found = schedule.period(containing: probe), found.end <= nowSeconds else {
                throw ValidationError("that period has not ended yet; use --now for a partial file")
            }
            let written = try exporter.export(
                file, csv, period: CSVPeriod(start: found.start, end: found.end), owner: owner,
                now: nowSeconds, redo: true, logger: logger, progress: progress)
            print(written.map { "\($0)" } ?? "period claimed elsewhere or empty (no file)")
            return
        }
        var count = 0
        for due in try exporter.duePeriods(file, csv, now: nowSeconds) {
            if let written = try exporter.export(file, csv, period: due, owner: owner, now: nowSeconds, logger: logger, progress: progress) {
                print(written)
                count += 1
            }
        }
        print("\(count) file(s) written")
    }
}
