import ArgumentParser
import BridgeApp
import Foundation

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
        let session = try store.session()
        defer { session.close() }
        let set = try refusing { () throws(OperatorFailure) in try session.mappings(directory: mappings) { print($0) } }
        let request: OperatorSession.ExportRequest = now ? .openPeriod : period.map { .period($0) } ?? .due
        let progress: (Int) -> Void = { rows in FileHandle.standardError.write(Data("… \(rows) rows\n".utf8)) }
        let files: [OperatorSession.ExportedFile]
        do {
            files = try session.export(mapping: mapping, request: request, mappings: set, progress: progress)
        } catch let failure as OperatorFailure {
            throw ValidationError(failure.message)
        }
        switch request {
        case .openPeriod:
            for file in files { print("\(file.path)\t\(file.rows ?? 0) row(s) (period still open)") }
        case .period:
            print(files.first?.path ?? "period claimed elsewhere or empty (no file)")
        case .due:
            for file in files { print(file.path) }
            print("\(files.count) file(s) written")
        }
    }
}
