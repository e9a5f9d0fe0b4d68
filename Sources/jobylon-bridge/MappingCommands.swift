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

    func run() throws {
        let variables = VariableSource()
        var (set, errors, warnings) = MappingLoader.load(directory: directory, variables: variables, strict: strict) { print($0) }
        for (name, missing) in set.held.sorted(by: { $0.key < $1.key }) {
            let reason = HoldReason.missingVariables(missing)
            print("\(name): \(strict ? "error" : "warning"): jobs will be held: \(reason)")
            if strict { errors += 1 } else { warnings += 1 }
        }
        print("\(set.mappings.count) mapping(s) checked: \(errors) error(s), \(warnings) warning(s)")
        if errors > 0 { throw ExitCode(1) }
    }
}

/// Reads an event file as Jobylon would send it and shapes it for mappings.
enum EventFile {
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read event file \(path)") }
        return [UInt8](data)
    }

    static func event(from bytes: [UInt8], receivedAt: String, source: String) throws -> MappingEvent {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, options: .payload)
        } catch {
            throw ValidationError("\(source):\(error)")
        }
        return try event(from: value, receivedAt: receivedAt, source: source)
    }

    static func event(from value: JSONValue, receivedAt: String, source: String) throws -> MappingEvent {
        guard let type = value["event_type"]?.stringValue, let action = value["action"]?.stringValue, let data = value["data"],
            data.objectValue != nil
        else {
            throw ValidationError("\(source): not a webhook envelope {event_type, action, data}")
        }
        let company = data["company"]?["id"]?.stringValue ?? data["company_id"]?.stringValue ?? "-"
        let subject = data["candidate"]?["id"]?.stringValue ?? data["job"]?["id"]?.stringValue ?? data["company_id"]?.stringValue ?? "-"
        return MappingEvent(type: type, action: action, data: data, receivedAt: receivedAt, entityKey: "\(company):\(subject)")
    }
}

/// The JSON a dry run prints for one mapping and one event.
enum MapOutput {
    static func result(_ mapping: MappingFile, _ event: MappingEvent, _ result: MappingResult, variables: VariableSource?, mask: Bool) -> JSONValue {
        var object = JSONObject()
        object["mapping"] = .string(mapping.name)
        object["event"] = .string(event.name)
        switch result {
        case .noMatch(let reason):
            object["result"] = "no match"
            object["reason"] = .string(reason)
        case .failed(let message):
            object["result"] = "error"
            object["error"] = .string(message)
        case .planned(let jobs):
            object["result"] = "planned"
            object["kind"] = .string(mapping.kind)
            object["jobs"] = .array(
                jobs.map { job in
                    var item = JSONObject()
                    if !job.item.isEmpty { item["item"] = .string(job.item) }
                    item["effect_key"] = .string(job.effectKey)
                    item["payload"] = variables.map { substitute(job.payload, $0, mask: mask) } ?? job.payload
                    return .object(item)
                })
        }
        return .object(object)
    }

    static func substitute(_ value: JSONValue, _ variables: VariableSource, mask: Bool) -> JSONValue {
        switch value {
        case .string(let s): return .string(variables.substitute(s, mask: mask))
        case .array(let items): return .array(items.map { substitute($0, variables, mask: mask) })
        case .object(let object):
            return .object(JSONObject(object.members.map { .init(key: $0.key, value: substitute($0.value, variables, mask: mask)) }))
        default: return value
        }
    }
}

struct Map: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dry run: render what a mapping makes of an event (request, CSV row or archive plan).",
        discussion: """
            Personal data is shown in clear (this is the operator's own tool); variables whose names \
            look like credentials (TOKEN, KEY, SECRET, PASSWORD) are masked; unset variables are shown \
            as ${NAME}. Never fails on unset variables.
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

    func validate() throws {
        guard (event == nil) != (ndjson == nil) else { throw ValidationError("give exactly one of --event FILE or --ndjson FILE") }
    }

    func run() throws {
        let variables = VariableSource()
        let file: MappingFile
        if mapping.hasSuffix(".json") || mapping.contains("/") {
            let (compiled, diagnostics) = MappingCompiler.compile(file: mapping, bytes: try EventFile.read(mapping))
            for diagnostic in diagnostics { FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8)) }
            guard let compiled else { throw ExitCode(1) }
            file = compiled
        } else {
            let (set, errors, _) = MappingLoader.load(directory: mappings, variables: variables, strict: false) {
                FileHandle.standardError.write(Data(($0 + "\n").utf8))
            }
            guard errors == 0 else { throw ExitCode(1) }
            guard let found = set.mapping(named: mapping) else { throw ValidationError("no mapping named \(mapping) in \(mappings)") }
            file = found
        }
        let now = MappingClock.iso8601(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        if let event {
            let input = try EventFile.event(from: try EventFile.read(event), receivedAt: now, source: event)
            print(JSONWriter.prettyString(MapOutput.result(file, input, file.plan(input, now: now), variables: variables, mask: true)))
            return
        }
        guard let ndjson, let handle = FileHandle(forReadingAtPath: ndjson) else { throw ValidationError("cannot read \(ndjson ?? "")") }
        var output = FileOutput()
        var lineNumber = 0
        try LineReader(handle: handle).forEachLine { line in
            lineNumber += 1
            guard !line.isEmpty else { return }
            let input = try EventFile.event(from: line, receivedAt: now, source: "\(ndjson):\(lineNumber)")
            output.write(JSONWriter.bytes(MapOutput.result(file, input, file.plan(input, now: now), variables: variables, mask: true)))
            output.write([0x0A])
        }
        output.flush()
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

/// Reads a file line by line in 1 MiB chunks (flat memory for large NDJSON).
struct LineReader {
    let handle: FileHandle

    func forEachLine(_ body: ([UInt8]) throws -> Void) throws {
        var pending: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            pending.append(contentsOf: chunk)
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                try body(Array(pending[start..<newline]))
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { try body(pending) }
    }
}
