import Domain
import Foundation
import JSON
import Mapping

// What the CLI's `map` and `test` commands do with mappings and event files.

/// Reads an event file as Jobylon would send it and shapes it for mappings.
public enum EventFile {
    /// The bytes of `path`, or a failure naming it.
    public static func read(_ path: String) throws(OperatorFailure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw OperatorFailure("cannot read event file \(path)") }
        return [UInt8](data)
    }

    /// Parses an envelope as the receiver would (`.payload` rules); `source` names it in errors.
    public static func event(from bytes: [UInt8], receivedAt: String, source: String) throws(OperatorFailure) -> MappingEvent {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, options: .payload)
        } catch {
            throw OperatorFailure("\(source):\(error)")
        }
        return try event(from: value, receivedAt: receivedAt, source: source)
    }

    /// What the entity key is made of, read besides a mapping's own paths.
    public static let entityPaths = DataPaths(keyPaths: [["company", "id"], ["company_id"], ["candidate", "id"], ["job", "id"]])

    /// As `event(from:receivedAt:source:)`, building only what `reader` reads of `data`
    /// (give it `entityPaths` too).
    public static func event(from bytes: [UInt8], reader: EnvelopeReader, receivedAt: String, source: String) throws(OperatorFailure)
        -> MappingEvent
    {
        let envelope: EnvelopeForMappings?
        do {
            envelope = try reader.read(bytes, options: .payload)
        } catch {
            throw OperatorFailure("\(source):\(error)")
        }
        guard let envelope else { throw OperatorFailure("\(source): not a webhook envelope {event_type, action, data}") }
        return event(type: envelope.type, action: envelope.action, data: envelope.data, receivedAt: receivedAt)
    }

    /// The mapping scope of an envelope: type, action, data, and `company:subject` as its entity key.
    public static func event(from value: JSONValue, receivedAt: String, source: String) throws(OperatorFailure) -> MappingEvent {
        guard let type = value["event_type"]?.stringValue, let action = value["action"]?.stringValue, let data = value["data"],
            data.objectValue != nil
        else {
            throw OperatorFailure("\(source): not a webhook envelope {event_type, action, data}")
        }
        return event(type: type, action: action, data: data, receivedAt: receivedAt)
    }

    /// The company an event file is for (`data.company.id`, or `data.company_id`
    /// on company/signup): `try` resolves per-company credentials with it.
    public static func companyID(_ data: JSONValue) -> String? {
        data["company"]?["id"]?.stringValue ?? data["company_id"]?.stringValue
    }

    static func event(type: String, action: String, data: JSONValue, receivedAt: String) -> MappingEvent {
        let company = companyID(data) ?? "-"
        let subject = data["candidate"]?["id"]?.stringValue ?? data["job"]?["id"]?.stringValue ?? data["company_id"]?.stringValue ?? "-"
        return MappingEvent(type: type, action: action, data: data, receivedAt: receivedAt, entityKey: "\(company):\(subject)")
    }
}

/// The JSON a dry run prints for one mapping and one event.
public enum MapOutput {
    /// `mapping`, `event`, `result` and, when planned, each job's item, effect key and payload
    /// (variables substituted; credential-like names masked when `mask`).
    /// A flow also gets `steps`: each step rendered in turn with the answers
    /// `responses` simulates (step name → `{status, headers, body}`), up to the
    /// first step without one.
    public static func result(
        _ mapping: MappingFile, _ event: MappingEvent, _ result: MappingResult, variables: VariableSource?, mask: Bool,
        responses: [String: JSONValue] = [:], now: String = ""
    ) -> JSONValue {
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
                    item["payload"] = variables.map { shown(job.payload, kind: mapping.kind, $0, mask: mask) } ?? job.payload
                    return .object(item)
                })
            if case .flow(let flow) = mapping.target {
                object["steps"] = steps(
                    of: flow, mapping, event, responses: responses, variables: variables ?? VariableSource(environment: [:]), mask: mask,
                    now: now)
            }
        }
        return .object(object)
    }

    /// Whether a simulated flow stopped on an error or a failed step (`map` exits 1).
    public static func flowFailed(_ output: JSONValue) -> Bool {
        guard case .array(let steps)? = output["steps"] else { return false }
        return steps.contains { $0["error"] != nil || $0["outcome"]?.stringValue == ResponseOutcome.fail.rawValue }
    }

    /// A flow run offline: what each step would send, how the simulated
    /// answer is read, what it captures; it stops where a real run would
    /// (a failure, a retry, `finish`) or at the first step without an answer.
    static func steps(
        of flow: FlowTarget, _ mapping: MappingFile, _ event: MappingEvent, responses: [String: JSONValue], variables: VariableSource,
        mask: Bool, now: String
    ) -> JSONValue {
        var run = FlowDryRun(mapping: mapping, flow: flow, event: event, now: now)
        while let (step, request) = run.nextRequest() {
            run.entries[run.entries.count - 1]["request"] = shown(request, kind: "rest", variables, mask: mask)
            guard let given = responses[step.name] else {
                run.stop(because: "not given: later steps are not rendered")
                break
            }
            let status = Int(given["status"]?.numberValue?.int64Value ?? 200)
            let headers = (given["headers"]?.objectValue ?? JSONObject()).members.map { (name: $0.key, value: JSONValue.plainText($0.value)) }
            run.record(status: status, headers: headers, body: JSONWriter.bytes(given["body"] ?? .null))
        }
        return .array(run.entries.map(JSONValue.object))
    }

    /// A payload as its executor uses it: a `rest` request filled in as it
    /// is sent (`VariableSource.fill`), other kinds with their placeholders
    /// replaced.
    static func shown(_ payload: JSONValue, kind: String, _ variables: VariableSource, mask: Bool) -> JSONValue {
        guard kind == "rest" else { return substitute(payload, variables, mask: mask) }
        var missing: [String] = []
        return variables.fill(payload, mask: mask, missing: &missing)
    }

    /// Every string of `value` with its `${VARIABLES}` replaced.
    public static func substitute(_ value: JSONValue, _ variables: VariableSource, mask: Bool) -> JSONValue {
        // Most results hold no placeholder: returned as they are, not rebuilt.
        guard mayHavePlaceholder(value) else { return value }
        switch value {
        case .string(let s): return .string(variables.substitute(s, mask: mask))
        case .array(let items): return .array(items.map { substitute($0, variables, mask: mask) })
        case .object(let object):
            return .object(JSONObject(object.members.map { .init(key: $0.key, value: substitute($0.value, variables, mask: mask)) }))
        default: return value
        }
    }
}

extension MapOutput {
    /// Whether any string in `value` may hold a `${` placeholder.
    static func mayHavePlaceholder(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): return VariableSource.mayHavePlaceholder(text)
        case .array(let items): return items.contains(where: mayHavePlaceholder)
        case .object(let object): return object.members.contains { mayHavePlaceholder($0.value) }
        default: return false
        }
    }
}

/// Reads a file line by line in 1 MiB chunks (flat memory for large NDJSON).
public struct LineReader {
    let handle: FileHandle

    /// Reads from `handle`, which the caller owns and closes.
    public init(handle: FileHandle) {
        self.handle = handle
    }

    /// Calls `body` with each line, without its newline (a last line without one too).
    public func forEachLine(_ body: ([UInt8]) throws -> Void) throws {
        var pending: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            pending.append(contentsOf: chunk)
            var start = 0
            while let newline = LineReader.newline(in: pending, from: start) {
                try body(Array(pending[start..<newline]))
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { try body(pending) }
    }

    /// The next `\n` at or after `start`: memchr, because the generic
    /// `firstIndex(of:)` on a slice compares byte by byte (5% of `map --ndjson`).
    static func newline(in bytes: [UInt8], from start: Int) -> Int? {
        bytes.withUnsafeBufferPointer { buffer -> Int? in
            guard let base = buffer.baseAddress, start < buffer.count,
                let found = memchr(base + start, 0x0A, buffer.count - start)
            else { return nil }
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
    }
}

/// One flow walked step by step outside the job engine (`map` with simulated
/// answers, `try` against a sandbox): the same conditions, rendering,
/// outcome rules and captures as `FlowExecutor`, with the progress kept in
/// memory and nothing stored. Each step adds one entry (`step`, then
/// `skipped`, `error`, or the caller's `request` and the answer's `status`,
/// `outcome`, `rule`, `captures`).
public struct FlowDryRun {
    let mapping: MappingFile
    let flow: FlowTarget
    let event: MappingEvent
    let now: String
    var progress = FlowProgress()
    var current: FlowStep?
    var over = false
    /// What happened so far, one object per step reached.
    public var entries: [JSONObject] = []

    /// A run at the first step.
    public init(mapping: MappingFile, flow: FlowTarget, event: MappingEvent, now: String) {
        self.mapping = mapping
        self.flow = flow
        self.event = event
        self.now = now
    }

    /// The next step to send and its rendered request (stored form, with
    /// `${VARIABLES}` as placeholders), recording skipped steps on the way;
    /// `nil` when the run is over (its end is in `entries`).
    public mutating func nextRequest() -> (step: FlowStep, request: JSONValue)? {
        guard !over else { return nil }
        for step in flow.steps where !progress.hasEnded(step.name) && !progress.isFinished {
            var entry = JSONObject()
            entry["step"] = .string(step.name)
            // A step that cannot be evaluated or rendered ends the run there.
            func ending(_ error: EvaluationError) -> (step: FlowStep, request: JSONValue)? {
                entry["error"] = .string(error.message)
                entries.append(entry)
                over = true
                return nil
            }
            switch mapping.flowStepApplies(step, event: event, steps: progress.scopeValue, now: now) {
            case .failure(let error): return ending(error)
            case .success(false):
                entry["skipped"] = .string("if is false: \(step.conditionSource ?? "")")
                entries.append(entry)
                progress.steps.append(.init(name: step.name, outcome: .skipped, at: 0))
                continue
            case .success(true):
                break
            }
            switch mapping.renderFlowStep(step, event: event, steps: progress.scopeValue, now: now) {
            case .failure(let error): return ending(error)
            case .success(let request):
                entries.append(entry)
                current = step
                return (step, request)
            }
        }
        over = true
        return nil
    }

    /// The answer to the step `nextRequest` returned: how it is read and
    /// what it captures; a failure or a retry ends the run.
    public mutating func record(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        guard let step = current, !entries.isEmpty else { return }
        current = nil
        let answer = RestTarget.responseValue(status: status, headers: headers, body: body)
        let (outcome, rule) = DownstreamAnswers.rest(
            answer, status: status, target: step.request, scope: mapping.flowAnswerScope(event: event, now: now))
        var entry = entries[entries.count - 1]
        entry["status"] = .number(JSONNumber(Int64(status)))
        entry["outcome"] = .string(outcome.rawValue)
        if let rule { entry["rule"] = .string(rule) }
        let captures = mapping.flowCaptures(step, response: answer, event: event, now: now)
        if !captures.isEmpty { entry["captures"] = .object(captures) }
        entries[entries.count - 1] = entry
        guard let ended = FlowProgress.StepOutcome(answered: outcome) else {
            over = true
            return
        }
        progress.steps.append(.init(name: step.name, outcome: ended, status: status, captures: captures, at: 0))
    }

    /// Ends the run at the current step without an answer (`reason` goes into its entry as `response`).
    public mutating func stop(because reason: String) {
        if current != nil, !entries.isEmpty { entries[entries.count - 1]["response"] = .string(reason) }
        current = nil
        over = true
    }
}
