import ArgumentParser
import BridgeApp
import Foundation
import JSON
import Mapping

/// `jobylon-bridge test`: runs the mapping test cases of `DIR/tests/*.json`.
///
/// A test file: `{"mapping": NAME, "cases": [{"name", "event" | "event_file",
/// "env", "now", "expect" | "expect_no_match" | "expect_error"}]}`. `expect`
/// is compared with the `jobs` array `map` would print (with the case's `env`
/// substituted and nothing masked); `expect_error` is a substring of the error.
struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the mapping test cases in DIR/tests (diff on failure, exit 1 if any fails)."
    )

    @Argument(help: "Mappings directory (default ./mappings).")
    var directory: String = "mappings"

    func run() throws {
        let runner = MappingTestRunner(directory: directory)
        let (passed, failed) = try refusing { () throws(OperatorFailure) in
            try runner.run(diagnostics: { print($0) }) { outcome in
                switch outcome.result {
                case .success:
                    print("ok    \(outcome.label)")
                case .failure(let failure):
                    let indented = failure.text.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }
                    print("FAIL  \(outcome.label)\n\(indented.joined(separator: "\n"))")
                }
            }
        }
        print("mappings: \(passed) passed, \(failed) failed")
        if failed > 0 || passed == 0 { throw ExitCode(1) }
    }
}
