import ArgumentParser
import BridgeApp
import Clocks
import Foundation
import Mapping

struct Archive: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The CV archive: list a candidate's files, verify every file's hash, purge what is past retention.",
        subcommands: [List.self, Verify.self, Purge.self]
    )

    static func time(_ timestamp: Timestamp) -> String { MappingClock.iso8601(milliseconds: timestamp.milliseconds) }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a candidate's archived files with their metadata.")
        @OptionGroup var store: StoreOptions
        @Option(name: .long, help: "Candidate id.") var candidate: String
        @Option(name: .long, help: "Only this company's records.") var company: String?

        func run() throws {
            let session = try store.session()
            defer { session.close() }
            let files = try session.store.archivedFiles(candidateID: candidate, companyID: company)
            print("id\tkind\tsize\tsha256\tdownloaded_at\tretain_until\tcontent_type\tpath\toriginal_name\tflag")
            for file in files {
                let type = file.sniffedType ?? file.contentType ?? "-"
                print(
                    [
                        "\(file.id ?? 0)", file.kind, "\(file.size)", String(file.sha256.prefix(16)), Archive.time(file.downloadedAt),
                        Archive.time(file.retainUntil), type, file.path, file.originalName ?? "-",
                        file.typeMismatch.map { "type mismatch: \($0)" } ?? "",
                    ].joined(separator: "\t"))
            }
            if files.isEmpty { print("(no archived files for candidate \(candidate))") }
            print("archive directory: \(session.archiveLayout.root)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-hash every archived file against its recorded SHA-256; report corrupt, missing and unrecorded files.",
            discussion: "Exits 1 when a file is corrupt or missing.")
        @OptionGroup var store: StoreOptions

        func run() throws {
            let session = try store.session()
            defer { session.close() }
            let result = try session.verifyArchive()
            for problem in result.problems { print("PROBLEM \(problem)") }
            for relative in result.unrecorded {
                print("UNRECORDED \(relative) (no store record: left by a crash before recording, or copied in by hand)")
            }
            let (checked, problems, unrecorded) = (result.checked, result.problems.count, result.unrecorded.count)
            print("verified \(checked) file(s): \(problems) problem(s), \(unrecorded) unrecorded file(s)")
            if problems > 0 { throw ExitCode(1) }
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete archived files (and their sidecars and records) whose retention ended.",
            discussion: "The daemon does this hourly; this runs it now. --dry-run lists what would go.")
        @OptionGroup var store: StoreOptions
        @Flag(name: .long, help: "Only list what would be deleted.") var dryRun = false

        func run() throws {
            let session = try store.session()
            defer { session.close() }
            var index = 0
            let outcome = session.purgeArchive(dryRun: dryRun) { file in
                index += 1
                print(
                    "\(dryRun ? "would delete" : "deleting") [\(index)] \(file.path) (\(file.size) bytes, retained until \(Archive.time(file.retainUntil)))"
                )
            }
            for failure in outcome.failures { print("FAILED \(failure)") }
            print(
                "\(dryRun ? "would delete" : "deleted") \(outcome.deleted) file(s), \(outcome.bytes) bytes\(outcome.failures.isEmpty ? "" : ", \(outcome.failures.count) failure(s)")"
            )
            if !outcome.failures.isEmpty { throw ExitCode(1) }
        }
    }
}
