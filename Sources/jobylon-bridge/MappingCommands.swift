import ArgumentParser
import BridgeApp
import Domain
import Foundation
import JSON
import Mapping

/// Shared by `check`, `map`, `test` and `serve`: loads and reports a mappings directory.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the mapping files of a directory (all problems listed as file:line:column).",
        discussion: "Exit status 1 when any error is found. Unknown paths and unset variables are warnings; --strict makes them errors."
    )

    @Argument(help: "Mappings directory (default ./mappings).")
    var directory: String = "mappings"

    @Flag(help: "Treat warnings (unknown paths, unset variables) as errors.")
    var strict = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory of secret files (default: secrets_dir from the configuration, as serve reads it); per-company names count as set.",
            valueName: "dir"))
    var secretsDir: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Connector packs to load beside DIR, comma-separated (default: the configuration's connectors when DIR is its mappings directory).",
            valueName: "names"))
    var connectors: String?

    func run() throws {
        // The option, else the secrets directory as serve resolves it (config file, environment).
        let configuration = try BridgeConfiguration.load()
        let variables = VariableSource(secretsDirectory: secretsDir ?? configuration.secretsDir)
        // What serve loads: the configured packs go with the configured directory.
        let packs =
            connectors.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            ?? (directory == configuration.mappingsDir ? configuration.connectors : [])
        var (set, errors, warnings) = MappingLoader.load(directory: directory, connectors: packs, variables: variables, strict: strict) {
            print($0)
        }
        for (name, missing) in set.held.sorted(by: { $0.key < $1.key }) {
            let reason = HoldReason.missingVariables(missing)
            print("\(name): \(strict ? "error" : "warning"): jobs will be held: \(reason)")
            if strict { errors += 1 } else { warnings += 1 }
        }
        print("\(set.mappings.count) mapping(s) checked: \(errors) error(s), \(warnings) warning(s)")
        if errors > 0 { throw ExitCode(1) }
    }
}

struct Map: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dry run: render what a mapping makes of an event (request, CSV row or archive plan).",
        discussion: """
            Personal data is shown in clear (this is the operator's own tool); variables whose names \
            look like credentials (TOKEN, KEY, SECRET, PASSWORD) are masked; unset variables are shown \
            as ${NAME}. Never fails on unset variables; exits 1 when a result is an error \
            (with --ndjson, after every line is printed).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Mapping name (in --mappings) or a mapping file path.", valueName: "name|file"))
    var mapping: String

    @Option(name: .long, help: ArgumentHelp("One event as Jobylon sends it.", valueName: "file"))
    var event: String?

    @Option(name: .long, help: ArgumentHelp("Many events, one JSON envelope per line; prints one compact result per line.", valueName: "file"))
    var ndjson: String?

    @Option(name: .long, help: ArgumentHelp("Mappings directory.", valueName: "dir"))
    var mappings: String = "mappings"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "For a mapping with \"after\": the other mapping's capture as JSON (what `response` reads), e.g. {\"employee_id\": \"E-42\"}.",
            valueName: "file"))
    var response: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "For a flow: simulated answers by step name, e.g. {\"create_person\": {\"status\": 201, \"body\": {\"id\": \"P-1\"}}}.",
            valueName: "file"))
    var responses: String?

    func validate() throws {
        guard (event == nil) != (ndjson == nil) else { throw ValidationError("give exactly one of --event FILE or --ndjson FILE") }
    }

    /// A result of `error` makes the command fail (exit 1) after every result is printed.
    static func isError(_ result: MappingResult) -> Bool {
        if case .failed = result { return true }
        return false
    }

    func run() throws {
        let variables = VariableSource()
        let file = try MappingArgument.load(mapping, directory: mappings, variables: variables)
        let now = MappingClock.iso8601(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        var extra: [String: JSONValue] = [:]
        if let response {
            do {
                extra["response"] = try JSONParser.parse(try EventFile.read(response), options: .strict)
            } catch let error as JSONError {
                throw ValidationError("--response \(response): \(error)")
            }
        }
        var simulated: [String: JSONValue] = [:]
        if let responses {
            do {
                let object = try JSONParser.parse(try EventFile.read(responses), options: .strict)
                guard case .object(let members) = object else { throw ValidationError("--responses \(responses): an object of step name → answer") }
                for member in members { simulated[member.key] = member.value }
            } catch let error as JSONError {
                throw ValidationError("--responses \(responses): \(error)")
            }
        }
        if let event {
            let input = try EventFile.event(from: try EventFile.read(event), receivedAt: now, source: event)
            let result = file.plan(input, now: now, extra: extra)
            let output = MapOutput.result(file, input, result, variables: variables, mask: true, responses: simulated, now: now)
            print(JSONWriter.prettyString(output))
            if Map.isError(result) || MapOutput.flowFailed(output) { throw ExitCode(1) }
            return
        }
        guard let ndjson, let handle = FileHandle(forReadingAtPath: ndjson) else { throw ValidationError("cannot read \(ndjson ?? "")") }
        var output = FileOutput()
        var lineNumber = 0
        var errors = 0
        var events = 0
        // Each line builds only what the mapping reads (validated whole all the same).
        let reader = EnvelopeReader(file.dataPaths.union(EventFile.entityPaths))
        try LineReader(handle: handle).forEachLine { line in
            lineNumber += 1
            guard !line.isEmpty else { return }
            let input = try EventFile.event(from: line, reader: reader, receivedAt: now, source: "\(ndjson):\(lineNumber)")
            let result = file.plan(input, now: now, extra: extra)
            events += 1
            if Map.isError(result) { errors += 1 }
            output.write(JSONWriter.bytes(MapOutput.result(file, input, result, variables: variables, mask: true)))
            output.write([0x0A])
        }
        output.flush()
        if errors > 0 {
            FileHandle.standardError.write(Data("\(errors) of \(events) event(s) gave a result of \"error\"\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Buffered stdout: one write(2) per 64 KiB, not per line.
struct FileOutput {
    var buffer: [UInt8] = []

    mutating func write(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        buffer.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(1, base + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// `--mapping NAME|FILE` of `map` and `try`: a file is compiled on its own,
/// a name is looked up in the mappings directory (loaded and cross-checked whole).
enum MappingArgument {
    static func load(_ mapping: String, directory mappings: String, variables: VariableSource) throws -> MappingFile {
        if mapping.hasSuffix(".json") || mapping.contains("/") {
            let (compiled, diagnostics) = MappingCompiler.compile(file: mapping, bytes: try EventFile.read(mapping))
            for diagnostic in diagnostics { FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8)) }
            guard let compiled else { throw ExitCode(1) }
            return compiled
        }
        // A mapping named from the configured directory may live in a configured connector pack.
        let configuration = try BridgeConfiguration.load()
        let packs = mappings == configuration.mappingsDir ? configuration.connectors : []
        let (set, errors, _) = MappingLoader.load(directory: mappings, connectors: packs, variables: variables, strict: false) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        guard errors == 0 else { throw ExitCode(1) }
        guard let found = set.mapping(named: mapping) else { throw ValidationError("no mapping named \(mapping) in \(mappings)") }
        return found
    }
}
