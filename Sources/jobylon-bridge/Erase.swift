import ArgumentParser
import BridgeApp
import Foundation

struct Erase: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase a candidate's personal data: raw bodies, job payloads, CSV rows, quarantined bodies, archived files.",
        discussion: """
            Open jobs of the candidate are cancelled first, so nothing is sent afterwards. Body hashes and the \
            effect ledger's keys stay: a late retry is still a duplicate and a re-send cannot create the hire \
            again. CSV files already delivered are listed: remove the rows there. Works beside a running daemon. \
            --dry-run reports without changing anything.
            """)

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "Candidate id.") var candidate: String
    @Option(name: .long, help: "Only this company's data.") var company: String?
    @Flag(name: .long, help: "Report what would be erased.") var dryRun = false

    func run() throws {
        guard !candidate.isEmpty else { throw ValidationError("--candidate must not be empty") }
        let session = try store.session()
        defer { session.close() }
        let outcome = try session.erase(candidate: candidate, company: company, dryRun: dryRun) { file in
            print("\(dryRun ? "would delete" : "deleting") archived \(file.path) (\(file.kind), \(file.size) bytes)")
        }
        let report = outcome.report
        let verb = dryRun ? "would erase" : "erased"
        print(
            "\(verb): \(report.events) event body(ies), \(report.jobsCleared) job payload(s) (\(report.jobsCancelled) open job(s) cancelled), "
                + "\(report.quarantined) quarantined body(ies), \(report.csvRows) staged CSV row(s), \(report.csvExportedKeys) exported-row record(s)"
        )
        for failure in outcome.failures { print("FAILED \(failure)") }
        for file in report.exportedFiles {
            print("delivered CSV file holding the candidate's rows (outside the store; edit by hand): \(file)")
        }
        if report.events + report.quarantined + report.csvRows + report.archiveFiles.count == 0 {
            print("nothing stored for candidate \(candidate)\(company.map { " of company \($0)" } ?? "")")
        }
        if !outcome.failures.isEmpty { throw ExitCode(1) }
    }
}
