import JSON

/// The event as mappings see it.
public struct MappingEvent: Sendable {
    /// The envelope's `event_type`, e.g. `candidate`.
    public var type: String
    /// The envelope's `action`, e.g. `new`.
    public var action: String
    /// `data` of the envelope.
    public var data: JSONValue
    /// ISO-8601 UTC.
    public var receivedAt: String
    /// The stored event's id: `event.id` in expressions and the `:event-<id>`
    /// idempotency suffix; `nil` gives `null` in expressions and `event-0` there.
    public var id: Int64?
    /// Default effect key: `<company id>:<subject id>`.
    public var entityKey: String
    /// Stored company snapshots by id (`companies[...]` in expressions).
    public var companies: JSONValue

    /// `companies` defaults to none, so `companies[...]` then finds nothing.
    public init(
        type: String, action: String, data: JSONValue, receivedAt: String, id: Int64? = nil, entityKey: String,
        companies: JSONValue = .object(JSONObject())
    ) {
        self.companies = companies
        self.type = type
        self.action = action
        self.data = data
        self.receivedAt = receivedAt
        self.id = id
        self.entityKey = entityKey
    }

    /// `type/action`, with `job/create` read as `job/new`.
    public var name: String {
        type == "job" && action == "create" ? "job/new" : "\(type)/\(action)"
    }
}

/// One unit of work a mapping produces for an event.
public struct RenderedJob: Sendable, Hashable {
    /// Tells one event's jobs of a mapping apart: empty for `rest` and `csv`; for
    /// `archive` the file kind, or `<kind>-<n>` for a list.
    public var item: String
    /// The key repeats are detected by; for `archive` it is `<effect key>:<item>`.
    public var effectKey: String
    /// What the job stores for its executor: `{method, url, headers, query, body,
    /// idempotency_key}`, `{row_key, received_at, row}` or `{kind, url, directory, received_at}`.
    public var payload: JSONValue
}

/// One mapping's answer for one event; `failed` still becomes a (dead) job, so
/// the failure is visible, while `noMatch` becomes nothing.
public enum MappingResult: Sendable, Hashable {
    case noMatch(reason: String)
    case planned([RenderedJob])
    /// The event matched but could not be rendered (e.g. a `required` field is
    /// missing); the message names mapping, field and path, never values.
    case failed(String)
}

extension MappingFile {
    /// What this mapping's templates see for `event`; `extra` adds stage names such as
    /// `period` (CSV export) or `response` (`after`).
    public func scope(for event: MappingEvent, now: String, extra: [String: JSONValue] = [:]) -> EvaluationScope {
        let eventObject: JSONValue = .object(
            JSONObject([
                .init(key: "id", value: event.id.map { .number(JSONNumber($0)) } ?? .null),
                .init(key: "type", value: .string(event.type)),
                .init(key: "action", value: .string(event.action)),
                .init(key: "received_at", value: .string(event.receivedAt)),
            ]))
        return EvaluationScope(data: event.data, event: eventObject, companies: event.companies, now: now, extra: extra, lookups: lookups)
    }

    /// Matches and renders one event. Pure: same inputs, same output.
    public func plan(_ event: MappingEvent, now: String, extra: [String: JSONValue] = [:]) -> MappingResult {
        guard enabled else { return .noMatch(reason: "mapping \(name) is disabled") }
        guard when.events.contains(event.name) else {
            return .noMatch(reason: "event \(event.name) is not in when.event (\(when.events.joined(separator: ", ")))")
        }
        var scope = self.scope(for: event, now: now, extra: extra)
        // Planned before `after`'s job answered: what reads `response` renders
        // when the job is sent (the compiler keeps it out of `when` and the key).
        if after != nil, extra["response"] == nil { scope.deferred = ["response"] }
        if let condition = when.condition {
            do {
                guard Evaluator.truthy(try Evaluator.evaluate(condition, in: scope)) else {
                    return .noMatch(reason: "when.if is false: \(when.conditionSource ?? "")")
                }
            } catch {
                return .failed("\(name): when.if: \(error.message)")
            }
        }
        do throws(EvaluationError) {
            let key = try effectKeyText(in: scope, event: event)
            switch target {
            case .flow(let flow):
                // Rendered now only to find what the event cannot give (a
                // `required` field, an invalid IBAN) before any step creates
                // something; what reads earlier steps renders when sent.
                var deferred = scope
                deferred.deferred.formUnion(["steps", "response", "failure"])
                // The steps' bodies and query values as far as the event gives
                // them: what the job will send of its personal data, so the
                // runner masks it by value in anything a downstream quotes back.
                var bodies: [JSONValue] = []
                var query = JSONObject()
                for step in flow.steps {
                    if let condition = step.condition {
                        do {
                            _ = try Evaluator.evaluate(condition, in: deferred)
                        } catch {
                            if error.deferredRoot == nil { throw EvaluationError("flow.steps[\(step.name)].if: \(error.message)") }
                        }
                    }
                    let request = try renderRest(
                        step.request, key: key + ":" + step.name, eventID: event.id, scope: deferred, label: "flow.steps[\(step.name)]")
                    bodies.append(request["body"] ?? .null)
                    for member in request["query"]?.objectValue ?? JSONObject() { query["\(step.name).\(member.key)"] = member.value }
                }
                let names: [JSONValue] = flow.steps.map { .string($0.name) }
                return .planned([
                    RenderedJob(
                        item: "", effectKey: key,
                        payload: ["flow": .string(name), "steps": .array(names), "body": .array(bodies), "query": .object(query)])
                ])
            case .rest(let rest):
                return .planned([RenderedJob(item: "", effectKey: key, payload: try renderRest(rest, key: key, eventID: event.id, scope: scope))])
            case .csv(let csv):
                var row = JSONObject()
                for column in csv.columns {
                    let value: JSONValue
                    do {
                        value = try column.value.render(in: scope)
                    } catch {
                        throw EvaluationError("csv.columns[\(column.name)]: \(error.message)")
                    }
                    if column.type != .text,
                        let problem = column.type.problem(with: JSONValue.plainText(value), delimiter: csv.format == .csv ? csv.delimiter : "")
                    {
                        throw EvaluationError("csv.columns[\(column.name)]: \(problem)")
                    }
                    row[column.name] = value
                }
                var rowKey = key
                if let template = csv.rowKey { rowKey = Evaluator.text(try template.render(in: scope)) }
                let payload: JSONValue = .object(
                    JSONObject([
                        .init(key: "row_key", value: .string(rowKey)),
                        .init(key: "received_at", value: .string(event.receivedAt)),
                        .init(key: "row", value: .object(row)),
                    ]))
                return .planned([RenderedJob(item: "", effectKey: "\(key)", payload: payload)])
            case .archive(let archive):
                let directory = Evaluator.text(try archive.directory.render(in: scope))
                var jobs: [RenderedJob] = []
                for file in archive.files {
                    let value: JSONValue
                    do {
                        value = try file.value.render(in: scope)
                    } catch {
                        throw EvaluationError("archive.files.\(file.kind): \(error.message)")
                    }
                    let urls: [String]
                    switch value {
                    case .string(let url) where !url.isEmpty: urls = [url]
                    case .array(let items): urls = items.compactMap { $0.stringValue }.filter { !$0.isEmpty }
                    default: urls = []
                    }
                    for (index, url) in urls.enumerated() {
                        let item = urls.count > 1 || value.arrayValue != nil ? "\(file.kind)-\(index + 1)" : file.kind
                        jobs.append(
                            RenderedJob(
                                item: item, effectKey: "\(key):\(item)",
                                payload: .object(
                                    JSONObject([
                                        .init(key: "kind", value: .string(item)),
                                        .init(key: "url", value: .string(url)),
                                        .init(key: "directory", value: .string(directory)),
                                        .init(key: "received_at", value: .string(event.receivedAt)),
                                    ]))))
                    }
                }
                return .planned(jobs)
            }
        } catch {
            return .failed("\(name): \(error.message)")
        }
    }

    /// The effect key for one event: the template's text, or the entity key.
    func effectKeyText(in scope: EvaluationScope, event: MappingEvent) throws(EvaluationError) -> String {
        guard let effectKey else { return event.entityKey }
        return Evaluator.text(try effectKey.render(in: scope))
    }

    func renderRest(
        _ rest: RestTarget, key: String, eventID scopeEventID: Int64?, scope eventScope: EvaluationScope, label: String = "rest"
    ) throws(EvaluationError) -> JSONValue {
        // Placeholders stay for send time; event data's `$` is escaped (`StoredText`).
        var scope = eventScope
        scope.escapesPlaceholders = true
        func field(_ field: String, _ template: Template) throws(EvaluationError) -> JSONValue {
            do {
                return try template.renderUnlessDeferred(in: scope)
            } catch {
                throw EvaluationError("\(label).\(field): \(error.message)")
            }
        }
        var headers = JSONObject()
        for header in rest.headers { headers[header.name] = .string(Evaluator.text(try field("headers.\(header.name)", header.value))) }
        var query = JSONObject()
        for item in rest.query { query[item.name] = .string(Evaluator.text(try field("query.\(item.name)", item.value))) }
        var body: JSONValue = .null
        if let template = rest.body {
            do {
                body = try template.render(in: scope)
            } catch {
                // The body field at fault, never its value: `flow.steps[create].body.Employee.Email: required: …`.
                throw EvaluationError("\(label).body\(error.fieldSuffix): \(error.message)")
            }
        }
        // Each mapping's default key is its own (a create and an update of one
        // entity must not share one); with `on_repeat: send` every event is a
        // delivery of its own, so its key names the event.
        var idempotencyKey = StoredText.escape("\(name):\(key)")
        if case .send = onRepeat { idempotencyKey += ":event-\(scopeEventID.map(String.init) ?? "0")" }
        if let template = rest.idempotencyKey { idempotencyKey = Evaluator.text(try field("idempotency_key", template)) }
        return .object(
            JSONObject([
                .init(key: "method", value: .string(rest.method)),
                .init(key: "url", value: .string(Evaluator.text(try field("url", rest.url)))),
                .init(key: "headers", value: .object(headers)),
                .init(key: "query", value: .object(query)),
                .init(key: "body", value: body),
                .init(key: "idempotency_key", value: .string(idempotencyKey)),
            ]))
    }
}

/// Converts between `Timestamp` milliseconds and the ISO-8601 UTC text mappings
/// see, by hand rather than with Foundation's formatters (see `DateText`).
public enum MappingClock {
    /// Unix milliseconds of `2026-11-29`, `2026-11-29 10:00:00` or ISO-8601 (no zone: UTC).
    public static func milliseconds(fromISO8601 text: String) -> Int64? {
        guard let parsed = DateText.parse(text) else { return nil }
        let seconds = DateText.epochSeconds(parsed.civil) - (parsed.offset ?? 0)
        return Int64(seconds) * 1000 + Int64(parsed.civil.millisecond)
    }

    /// ISO-8601 text of a Unix time in milliseconds (for `now` and `received_at`).
    public static func iso8601(milliseconds: Int64) -> String {
        DateText.iso8601(epochMilliseconds: milliseconds)
    }
}
