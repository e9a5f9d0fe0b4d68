import Foundation
import JSON
import Mapping

/// Runs the mapping test cases of `DIR/tests/*.json`.
///
/// A test file: `{"mapping": NAME, "cases": [{"name", "event" | "event_file",
/// "env", "now", "response", "responses", "expect" | "expect_steps" |
/// "expect_no_match" | "expect_error"}]}`.
/// `response` is, for a mapping with `after`, the capture of the mapping
/// named there (without it, what reads `response` renders `null`);
/// `responses` the simulated answers of a flow's steps by name, and
/// `expect_steps` the `steps` array `map` prints for them. `expect`
/// is compared with the `jobs` array `map` would print (with the case's `env`
/// substituted and nothing masked); `expect_error` is a substring of the error.
public struct MappingTestRunner: Sendable {
    /// The mappings directory; its cases are in `tests/`.
    public let directory: String

    var testsDirectory: String { (directory as NSString).appendingPathComponent("tests") }

    /// Tests the mappings of `directory`.
    public init(directory: String) {
        self.directory = directory
    }

    /// One case's result, labelled `file › case name`.
    public struct Outcome: Sendable {
        /// `file › case name` (just the file when the file itself is unusable).
        public var label: String
        /// Passed, or why not.
        public var result: Result<Void, Failure>
    }

    /// Runs every case in file order; `diagnostics` sees the mappings' own,
    /// `report` each outcome. Returns the counts; a mapping set with errors throws.
    public func run(diagnostics: (String) -> Void, report: (Outcome) -> Void) throws(OperatorFailure) -> (passed: Int, failed: Int) {
        let (set, errors, _) = MappingLoader.load(
            directory: directory, variables: VariableSource(environment: [:]), strict: false, print: diagnostics)
        guard errors == 0 else { throw OperatorFailure("\(errors) error(s) in the mapping files of \(directory)") }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: testsDirectory))?.filter { $0.hasSuffix(".json") }.sorted() ?? []
        var passed = 0
        var failed = 0
        for name in files {
            let path = (testsDirectory as NSString).appendingPathComponent(name)
            let document: JSONValue
            do {
                document = try JSONParser.parse(try EventFile.read(path), options: .strict)
            } catch let error as JSONError {
                report(Outcome(label: name, result: .failure(Failure(text: "\(path):\(error)"))))
                failed += 1
                continue
            } catch {
                report(Outcome(label: name, result: .failure(Failure(text: "\(error)"))))
                failed += 1
                continue
            }
            guard let mappingName = document["mapping"]?.stringValue, let mapping = set.mapping(named: mappingName) else {
                report(Outcome(label: name, result: .failure(Failure(text: "\(path): \"mapping\" must name a mapping of \(directory)"))))
                failed += 1
                continue
            }
            for (index, testCase) in (document["cases"]?.arrayValue ?? []).enumerated() {
                let label = "\(name) › \(testCase["name"]?.stringValue ?? "case \(index + 1)")"
                let result = runCase(testCase, mapping: mapping)
                if case .success = result { passed += 1 } else { failed += 1 }
                report(Outcome(label: label, result: result))
            }
        }
        return (passed, failed)
    }

    /// Why a case failed: a diff or a message, ready to print.
    public struct Failure: Error, Sendable {
        /// A line diff of expected and actual jobs, or what was missing.
        public var text: String
    }

    /// Runs one case against `mapping`: the case's `env` as the only variables, nothing masked.
    public func runCase(_ testCase: JSONValue, mapping: MappingFile) -> Result<Void, Failure> {
        var environment: [String: String] = [:]
        for member in testCase["env"]?.objectValue ?? JSONObject() {
            environment[member.key] = member.value.stringValue ?? ""
        }
        let variables = VariableSource(environment: environment, dataDirectory: "/var/lib/jobylon-bridge")
        let now = testCase["now"]?.stringValue ?? "2026-01-01T00:00:00.000Z"
        let event: MappingEvent
        do {
            if let file = testCase["event_file"]?.stringValue {
                let path = (testsDirectory as NSString).appendingPathComponent(file)
                event = try EventFile.event(from: try EventFile.read(path), receivedAt: now, source: path)
            } else if let inline = testCase["event"] {
                event = try EventFile.event(from: inline, receivedAt: now, source: "event")
            } else {
                return .failure(Failure(text: "the case needs \"event\" or \"event_file\""))
            }
        } catch {
            return .failure(Failure(text: error.message))
        }
        // An `after` mapping's request as it is sent: with the other job's capture as `response`.
        let extra: [String: JSONValue] = testCase["response"].map { ["response": $0] } ?? [:]
        // A flow's steps, each with the answer the case simulates for it.
        var responses: [String: JSONValue] = [:]
        for member in testCase["responses"]?.objectValue ?? JSONObject() { responses[member.key] = member.value }
        let result = mapping.plan(event, now: now, extra: extra)
        let actual = MapOutput.result(mapping, event, result, variables: variables, mask: false, responses: responses, now: now)
        if let expected = testCase["expect_steps"] {
            let steps = actual["steps"] ?? .null
            if steps == expected { return .success(()) }
            return .failure(Failure(text: Diff.lines(expected: JSONWriter.prettyString(expected), actual: JSONWriter.prettyString(steps))))
        }
        if testCase["expect_no_match"]?.boolValue == true {
            if case .noMatch = result { return .success(()) }
            return .failure(Failure(text: "expected no match, got:\n" + JSONWriter.prettyString(actual)))
        }
        if let expected = testCase["expect_error"]?.stringValue {
            if case .failed(let message) = result, message.contains(expected) { return .success(()) }
            return .failure(Failure(text: "expected an error containing \"\(expected)\", got:\n" + JSONWriter.prettyString(actual)))
        }
        guard let expected = testCase["expect"] else {
            return .failure(Failure(text: "the case needs \"expect\", \"expect_steps\", \"expect_no_match\" or \"expect_error\""))
        }
        let jobs = actual["jobs"] ?? actual
        if jobs == expected { return .success(()) }
        return .failure(Failure(text: Diff.lines(expected: JSONWriter.prettyString(expected), actual: JSONWriter.prettyString(jobs))))
    }
}

/// A small line diff (longest common subsequence) for test failures.
public enum Diff {
    /// `expected` and `actual` line by line: `  ` same, `- ` only expected, `+ ` only actual.
    public static func lines(expected: String, actual: String) -> String {
        let a = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = actual.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var out: [String] = ["--- expected", "+++ actual"]
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append("  " + a[i])
                i += 1
                j += 1
            } else if j < b.count, i == a.count || table[i][j + 1] >= table[i + 1][j] {
                out.append("+ " + b[j])
                j += 1
            } else {
                out.append("- " + a[i])
                i += 1
            }
        }
        return out.joined(separator: "\n")
    }
}
