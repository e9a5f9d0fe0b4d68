import Crypto
import JSON

/// A problem in a mapping file, located as `file:line:column`.
public struct MappingDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Any error refuses the whole directory (the daemon does not start, a reload
    /// keeps the old set in force); a warning, such as an undocumented path, is
    /// only reported unless `check --strict` makes it an error.
    public enum Severity: String, Sendable, Hashable { case error, warning }

    /// Whether the problem refuses the directory or is only reported.
    public var severity: Severity
    /// The path as given to the compiler; the directory itself when it cannot be read.
    public var file: String
    /// 1-based; 1 (with column 1) when the problem has no place of its own, such as
    /// a cross-check between mappings.
    public var line: Int
    /// 1-based, in Unicode scalars (what an editor shows); inside a string it points
    /// at the faulty part of the template.
    public var column: Int
    /// Where in the file's JSON (RFC 6901).
    public var pointer: String
    /// Names keys and expected values of the mapping file (operator-written, not event data).
    public var message: String

    public var description: String {
        "\(file):\(line):\(column): \(severity.rawValue): \(message)" + (pointer.isEmpty ? "" : " (at \(pointer))")
    }
}

/// Compiles mapping files, collecting every problem instead of stopping at the first.
final class CompileContext {
    let file: String
    let sourceMap: JSONSourceMap?
    var diagnostics: [MappingDiagnostic] = []
    var variables: [(name: String, fallback: String?)] = []
    var paths: [(Expression.Path, JSONPointer, Int)] = []

    init(file: String, sourceMap: JSONSourceMap?) {
        self.file = file
        self.sourceMap = sourceMap
    }

    func report(_ severity: MappingDiagnostic.Severity, _ message: String, at pointer: JSONPointer, key: Bool = false, scalar: Int? = nil) {
        var position = key ? sourceMap?.keyPosition(of: pointer) : sourceMap?.position(of: pointer)
        if let scalar, let inner = sourceMap?.position(ofScalar: scalar, inStringAt: pointer) { position = inner }
        if position == nil, key { position = sourceMap?.position(of: pointer) }
        diagnostics.append(
            MappingDiagnostic(
                severity: severity, file: file, line: position?.line ?? 1, column: position?.column ?? 1,
                pointer: pointer.description, message: message))
    }

    func error(_ message: String, at pointer: JSONPointer, key: Bool = false, scalar: Int? = nil) {
        report(.error, message, at: pointer, key: key, scalar: scalar)
    }

    /// Where a diagnostic about `pointer` (at `scalar` inside its string) would point.
    func location(_ pointer: JSONPointer, scalar: Int?) -> MappingSourceLocation {
        var position = sourceMap?.position(of: pointer)
        if let scalar, let inner = sourceMap?.position(ofScalar: scalar, inStringAt: pointer) { position = inner }
        return MappingSourceLocation(file: file, line: position?.line ?? 1, column: position?.column ?? 1, pointer: pointer.description)
    }

    /// Parses a template string, reporting a syntax error at its exact column.
    func template(_ text: String, at pointer: JSONPointer) -> Template? {
        do {
            let template = try Template.parse(text)
            try checkFilters(template, at: pointer)
            variables.append(contentsOf: template.variables)
            for part in template.parts {
                if case .expression(let expression, let offset) = part { collectPaths(expression, pointer: pointer, base: offset) }
            }
            return template
        } catch {
            self.error(error.message, at: pointer, scalar: error.offset)
            return nil
        }
    }

    func expression(_ text: String, at pointer: JSONPointer) -> Expression? {
        var source = text
        var base = 0
        // `if` conditions may be written bare or wrapped in {{ }}.
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}"), let template = self.template(text, at: pointer) {
            if template.isSingleExpression, case .expression(let expression, _) = template.parts[0] { return expression }
            error("a condition must be a single expression", at: pointer)
            return nil
        }
        do {
            let expression = try ExpressionParser.parse(source)
            try checkFilters(Template(parts: [.expression(expression, offset: 0)], source: source), at: pointer)
            collectPaths(expression, pointer: pointer, base: 0)
            return expression
        } catch {
            base = error.offset
            source = ""
            self.error(error.message, at: pointer, scalar: base)
            return nil
        }
    }

    /// Unknown filters and wrong arity are compile errors.
    func checkFilters(_ template: Template, at pointer: JSONPointer) throws(ExpressionSyntaxError) {
        func walk(_ e: Expression, base: Int) throws(ExpressionSyntaxError) {
            switch e {
            case .literal: return
            case .path(let path):
                for segment in path.segments {
                    if case .computed(let inner) = segment { try walk(inner, base: base) }
                }
            case .list(let items): for item in items { try walk(item, base: base) }
            case .not(let inner): try walk(inner, base: base)
            case .and(let a, let b), .or(let a, let b), .compare(let a, _, let b):
                try walk(a, base: base)
                try walk(b, base: base)
            case .conditional(let c, let t, let f):
                try walk(c, base: base)
                try walk(t, base: base)
                try walk(f, base: base)
            case .filter(let input, let call):
                try walk(input, base: base)
                for argument in call.arguments { try walk(argument, base: base) }
                guard let filter = Filters.all[call.name] else {
                    let known = Filters.all.keys.sorted().joined(separator: ", ")
                    throw ExpressionSyntaxError(offset: base + call.offset, message: "unknown filter '\(call.name)' (known: \(known))")
                }
                guard filter.arity.contains(call.arguments.count) else {
                    let expected =
                        filter.arity.lowerBound == filter.arity.upperBound
                        ? "\(filter.arity.lowerBound)" : "\(filter.arity.lowerBound) to \(filter.arity.upperBound)"
                    throw ExpressionSyntaxError(
                        offset: base + call.offset, message: "filter '\(call.name)' takes \(expected) argument(s), got \(call.arguments.count)")
                }
                if ["regex_replace", "matches"].contains(call.name), case .literal(.string(let pattern))? = call.arguments.first {
                    do {
                        _ = try RegexCache.compile(pattern)
                    } catch {
                        throw ExpressionSyntaxError(offset: base + call.offset, message: "filter '\(call.name)': invalid regular expression")
                    }
                }
            }
        }
        for part in template.parts {
            if case .expression(let expression, let offset) = part { try walk(expression, base: offset) }
        }
    }

    func collectPaths(_ e: Expression, pointer: JSONPointer, base: Int) {
        switch e {
        case .literal: return
        case .path(let path):
            paths.append((path, pointer, base + path.offset))
            for segment in path.segments {
                if case .computed(let inner) = segment { collectPaths(inner, pointer: pointer, base: base) }
            }
        case .list(let items):
            for item in items { collectPaths(item, pointer: pointer, base: base) }
        case .not(let inner): collectPaths(inner, pointer: pointer, base: base)
        case .and(let a, let b), .or(let a, let b), .compare(let a, _, let b):
            collectPaths(a, pointer: pointer, base: base)
            collectPaths(b, pointer: pointer, base: base)
        case .conditional(let c, let t, let f):
            for part in [c, t, f] { collectPaths(part, pointer: pointer, base: base) }
        case .filter(let input, let call):
            collectPaths(input, pointer: pointer, base: base)
            for argument in call.arguments { collectPaths(argument, pointer: pointer, base: base) }
        }
    }
}

/// Reads one JSON object of a mapping file, tracking which keys were used.
struct ObjectReader {
    let object: JSONObject
    let pointer: JSONPointer
    let context: CompileContext
    var used: Set<String> = []

    init?(_ value: JSONValue?, at pointer: JSONPointer, context: CompileContext, what: String) {
        guard let value else { return nil }
        guard case .object(let object) = value else {
            context.error("\(what) must be an object, got \(value.typeName)", at: pointer)
            return nil
        }
        self.object = object
        self.pointer = pointer
        self.context = context
    }

    mutating func value(_ key: String) -> JSONValue? {
        used.insert(key)
        return object[key]
    }

    mutating func string(_ key: String, required: Bool = false) -> String? {
        guard let value = value(key) else {
            if required { context.error("missing required key \"\(key)\"", at: pointer) }
            return nil
        }
        guard case .string(let s) = value else {
            context.error("\"\(key)\" must be a string, got \(value.typeName)", at: pointer.appending(key))
            return nil
        }
        return s
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else {
            context.error("\"\(key)\" must be true or false, got \(value.typeName)", at: pointer.appending(key))
            return nil
        }
        return b
    }

    mutating func int(_ key: String, range: ClosedRange<Int>) -> Int? {
        guard let value = value(key) else { return nil }
        guard let n = value.numberValue?.int64Value, let i = Int(exactly: n), range.contains(i) else {
            context.error("\"\(key)\" must be an integer from \(range.lowerBound) to \(range.upperBound)", at: pointer.appending(key))
            return nil
        }
        return i
    }

    mutating func oneOf(_ key: String, _ allowed: [String]) -> String? {
        guard let s = string(key) else { return nil }
        guard allowed.contains(s) else {
            context.error("\"\(key)\" must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))", at: pointer.appending(key))
            return nil
        }
        return s
    }

    mutating func template(_ key: String, required: Bool = false) -> Template? {
        guard let s = string(key, required: required) else { return nil }
        return context.template(s, at: pointer.appending(key))
    }

    mutating func duration(_ key: String) -> Int? {
        guard let s = string(key) else { return nil }
        guard let seconds = Durations.seconds(s) else {
            context.error("\"\(key)\" must be a duration like \"30s\", \"15m\", \"1h\" or \"3d\"", at: pointer.appending(key))
            return nil
        }
        return seconds
    }

    /// Object of name → template, in file order.
    mutating func templateMap(_ key: String) -> [(name: String, value: Template)] {
        guard let value = value(key) else { return [] }
        guard case .object(let members) = value else {
            context.error("\"\(key)\" must be an object", at: pointer.appending(key))
            return []
        }
        var out: [(String, Template)] = []
        for member in members {
            let at = pointer.appending(key).appending(member.key)
            guard case .string(let s) = member.value else {
                context.error("must be a string", at: at)
                continue
            }
            if let template = context.template(s, at: at) { out.append((member.key, template)) }
        }
        return out
    }

    func finish() {
        for member in object where !used.contains(member.key) {
            let known = used.sorted().joined(separator: ", ")
            context.error("unknown key \"\(member.key)\" (known here: \(known))", at: pointer.appending(member.key), key: true)
        }
    }
}

/// The one reading of a duration as mappings and options write it: `30s`,
/// `15m`, `1h`, `3d`.
public enum Durations {
    /// Whole seconds, or nil for text that is not a duration.
    public static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let value = Int(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "s": return value
        case "m": return value * 60
        case "h": return value * 3600
        case "d": return value * 86_400
        default: return nil
        }
    }
}

/// Turns one mapping file's bytes into a `MappingFile`, reporting every problem
/// it finds rather than stopping at the first. It reads no files itself:
/// `MappingSet.load` does that and adds the checks across files.
public enum MappingCompiler {
    static let topLevelKeys = [
        "name", "description", "enabled", "when", "effect_key", "on_repeat", "after", "lookups", "rest", "csv", "archive", "flow", "$schema",
    ]

    /// The events a mapping can name in `when.event`: the Partner API's four
    /// that the router routes (`job/create` arrives as `job/new`; other events
    /// are stored, never routed). Anything else is a typo that would match nothing.
    public static let knownEvents = ["company/signup", "job/new", "job/update", "candidate/new"]

    /// Compiles one file. Returns the mapping when it has no errors.
    public static func compile(file: String, bytes: [UInt8]) -> (MappingFile?, [MappingDiagnostic]) {
        let document: JSONDocument
        do {
            document = try JSONParser.parseDocument(bytes, options: .mappingFile)
        } catch {
            return (
                nil,
                [
                    MappingDiagnostic(
                        severity: .error, file: file, line: error.position.line, column: error.position.column,
                        pointer: error.pointer.description, message: error.message)
                ]
            )
        }
        let context = CompileContext(file: file, sourceMap: document.sourceMap)
        guard var root = ObjectReader(document.value, at: .root, context: context, what: "a mapping file") else {
            return (nil, context.diagnostics)
        }
        let name = root.string("name", required: true) ?? ""
        if !name.isEmpty, !name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }) {
            context.error("\"name\" may contain lower-case letters, digits, '-' and '_' only", at: JSONPointer(tokens: ["name"]))
        }
        let fileName = file.split(separator: "/").last.map(String.init) ?? file
        if !name.isEmpty, fileName.hasSuffix(".json"), fileName != name + ".json" {
            context.error("the file of mapping \"\(name)\" must be named \(name).json", at: JSONPointer(tokens: ["name"]))
        }
        let description = root.string("description")
        let enabled = root.bool("enabled") ?? true
        _ = root.string("$schema")

        var when = MappingFile.When(events: [], condition: nil, conditionSource: nil)
        if var reader = ObjectReader(root.value("when"), at: JSONPointer(tokens: ["when"]), context: context, what: "\"when\"") {
            switch reader.value("event") {
            case .string(let event)?: when.events = [event]
            case .array(let items)?: when.events = items.compactMap(\.stringValue)
            default: context.error("\"event\" must name an event like \"candidate/new\", or a list of them", at: reader.pointer)
            }
            let pointer = reader.pointer.appending("event")
            for (index, event) in when.events.enumerated() where !MappingCompiler.knownEvents.contains(event) {
                let hint = event == "job/create" ? " (Jobylon's other name for job/new: write job/new)" : ""
                context.error(
                    "unknown event \"\(event)\"\(hint); known: \(MappingCompiler.knownEvents.joined(separator: ", "))",
                    at: reader.value("event")?.arrayValue == nil ? pointer : pointer.appending(index))
            }
            if let condition = reader.string("if") {
                when.condition = context.expression(condition, at: reader.pointer.appending("if"))
                when.conditionSource = condition
            }
            reader.finish()
        } else {
            context.error("missing required key \"when\"", at: .root)
        }

        let effectKey = root.template("effect_key")
        var onRepeat = MappingFile.OnRepeat.skip
        if let repeatText = root.string("on_repeat") {
            switch repeatText {
            case "skip": onRepeat = .skip
            case "send": onRepeat = .send
            default: onRepeat = .mapping(repeatText)
            }
        }
        let after = root.string("after")

        var lookups: [String: JSONObject] = [:]
        if let value = root.value("lookups") {
            if case .object(let tables) = value {
                for table in tables {
                    if case .object(let entries) = table.value {
                        lookups[table.key] = entries
                    } else {
                        context.error("a lookup table must be an object of key → value", at: JSONPointer(tokens: ["lookups", table.key]))
                    }
                }
            } else {
                context.error("\"lookups\" must be an object of named tables", at: JSONPointer(tokens: ["lookups"]))
            }
        }

        let targets = ["rest", "csv", "archive", "flow"].filter { root.object[$0] != nil }
        var target: MappingTarget?
        if targets.count != 1 {
            context.error(
                targets.isEmpty
                    ? "a mapping needs exactly one target: \"rest\", \"flow\", \"csv\" or \"archive\""
                    : "a mapping has exactly one target, found \(targets.joined(separator: " and "))", at: .root)
        }
        if let kind = targets.first {
            switch kind {
            case "rest": target = compileRest(root.value("rest"), context: context).map(MappingTarget.rest)
            case "csv": target = compileCSV(root.value("csv"), context: context).map(MappingTarget.csv)
            case "flow": target = compileFlow(root.value("flow"), context: context).map(MappingTarget.flow)
            default: target = compileArchive(root.value("archive"), context: context).map(MappingTarget.archive)
            }
        }
        for key in targets.dropFirst() { _ = root.value(key) }
        root.finish()
        checkPaths(context: context, lookups: lookups)
        let responseReads = checkResponsePaths(context: context, after: after)
        if case .flow(let flow)? = target { checkStepPaths(context: context, flow: flow) }
        if target != nil, after != nil, case .flow? = target {
            context.error(
                "a flow cannot wait \"after\" another mapping yet: make the other request a step of the flow", at: JSONPointer(tokens: ["after"]))
        }

        let hash = SHA256.hash(data: bytes).map { UInt8($0) }
        let hex = Array("0123456789abcdef")
        let contentHash = String(hash.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] })
        var seen = Set<String>()
        let required = context.variables.filter { $0.fallback == nil && $0.name != "DATA_DIR" }.map(\.name).filter { seen.insert($0).inserted }
        guard !context.diagnostics.contains(where: { $0.severity == .error }), let target else {
            return (nil, context.diagnostics)
        }
        let mapping = MappingFile(
            name: name, description: description, enabled: enabled, file: file, when: when, effectKey: effectKey,
            onRepeat: onRepeat, after: after, lookups: lookups, target: target, contentHash: contentHash,
            requiredVariables: required, dataPaths: DataPaths(expressionPaths: context.paths.map(\.0)), responseReads: responseReads,
            source: bytes)
        return (mapping, context.diagnostics)
    }

    static func jsonTemplate(_ value: JSONValue, at pointer: JSONPointer, context: CompileContext) -> JSONTemplate {
        switch value {
        case .string(let s):
            guard let template = context.template(s, at: pointer) else { return .literal(value) }
            return template.parts.contains(where: { if case .text = $0 { return false } else { return true } })
                ? .template(template) : .literal(value)
        case .array(let items):
            return .array(items.enumerated().map { jsonTemplate($0.element, at: pointer.appending($0.offset), context: context) })
        case .object(let object):
            return .object(object.members.map { ($0.key, jsonTemplate($0.value, at: pointer.appending($0.key), context: context)) })
        default:
            return .literal(value)
        }
    }

    static func compileRest(_ value: JSONValue?, context: CompileContext) -> RestTarget? {
        let at = JSONPointer(tokens: ["rest"])
        guard var r = ObjectReader(value, at: at, context: context, what: "\"rest\"") else { return nil }
        let target = compileRequest(&r, at: at, context: context, inherited: nil)
        r.finish()
        return target
    }

    /// What a flow's steps inherit unless they set it themselves.
    struct StepDefaults {
        var headers: [(name: String, value: Template)]
        var auth: RestAuth?
        var timeoutSeconds: Int?
        var idempotencyHeader: String?
        var limits: RequestLimits?
    }

    /// `limits`: `rate` (`10/min`, `25/5s`), `concurrency`, `per` (`host` or
    /// `company`), `breaker_after` (failures in a row), `breaker_open` (a
    /// duration), `throttle_pause` (a 429 without `Retry-After`; a duration).
    static func compileLimits(_ value: JSONValue?, at: JSONPointer, context: CompileContext) -> RequestLimits? {
        guard var l = ObjectReader(value, at: at, context: context, what: "\"limits\"") else { return nil }
        var limits = RequestLimits()
        if let text = l.string("rate") {
            if let rate = RequestLimits.rate(text) {
                limits.rate = rate
            } else {
                context.error("\"rate\" must be a count per window, e.g. \"10/min\", \"25/5s\" or \"100/1h\"", at: at.appending("rate"))
            }
        }
        limits.concurrency = l.int("concurrency", range: 1...1000)
        limits.per = l.oneOf("per", ["host", "company"]).flatMap(RequestLimits.Scope.init(rawValue:)) ?? .host
        limits.breakerAfter = l.int("breaker_after", range: 1...1000) ?? limits.breakerAfter
        limits.breakerOpenSeconds = l.duration("breaker_open").map { max($0, 1) } ?? limits.breakerOpenSeconds
        limits.throttlePauseSeconds = l.duration("throttle_pause").map { max($0, 1) } ?? limits.throttlePauseSeconds
        l.finish()
        return limits
    }

    /// The request keys of a `rest` target or a flow step (the caller finishes the reader).
    static func compileRequest(_ r: inout ObjectReader, at: JSONPointer, context: CompileContext, inherited: StepDefaults?) -> RestTarget? {
        let method = (r.oneOf("method", ["GET", "POST", "PUT", "PATCH", "DELETE"]) ?? "POST")
        let url = r.template("url", required: true)
        if let url {
            // Event data must never choose where personal data goes.
            let prefix = url.fixedPrefix
            let text = prefix.text
            let afterScheme = text.range(of: "://").map { text[$0.upperBound...] }
            let authorityComplete = afterScheme.map { $0.contains("/") } ?? false
            let startsWithVariable = text.hasPrefix("${")
            if !(text.hasPrefix("https://") || text.hasPrefix("http://") || startsWithVariable) {
                context.error("\"url\" must start with https://, http:// or a ${VARIABLE} holding the base URL", at: at.appending("url"))
            } else if !prefix.complete && !authorityComplete && !(startsWithVariable && text.contains("/")) {
                context.error(
                    "\"url\": scheme and host must be fixed text or a ${VARIABLE}; expressions may fill the path and query only",
                    at: at.appending("url"))
            }
        }
        var headers = r.templateMap("headers")
        // A step with its own Authorization header (often another host: the
        // result card in Jobylon) never gets the flow's credentials too.
        let ownAuthorization = headers.contains { $0.name.lowercased() == "authorization" }
        if let inherited {
            headers = inherited.headers.filter { shared in !headers.contains { $0.name.lowercased() == shared.name.lowercased() } } + headers
        }
        let query = r.templateMap("query")
        let body = r.value("body").map { jsonTemplate($0, at: at.appending("body"), context: context) }
        var success = [200, 201, 202, 204]
        if let list = r.value("success") {
            if case .array(let items) = list, items.allSatisfy({ $0.numberValue?.int64Value.map { (100...599).contains($0) } ?? false }) {
                success = items.compactMap { $0.numberValue?.int64Value.map(Int.init) }
            } else {
                context.error("\"success\" must be a list of HTTP status codes", at: at.appending("success"))
            }
        }
        // A flow's retry limits are the flow's (one job): steps have none of their own.
        let retry = inherited == nil ? compileRetry(&r, at: at, context: context) : RetrySettings()
        let idempotencyKey = r.template("idempotency_key")
        let idempotencyHeader = r.string("idempotency_header") ?? inherited?.idempotencyHeader ?? "Idempotency-Key"
        let honours = r.bool("honours_idempotency_key") ?? false
        let capture = r.templateMap("capture")
        let outcomes = compileOutcomes(r.value("outcomes"), at: at.appending("outcomes"), context: context)
        let limits = compileLimits(r.value("limits"), at: at.appending("limits"), context: context) ?? inherited?.limits ?? RequestLimits()
        let timeout = r.duration("timeout") ?? inherited?.timeoutSeconds
        let auth = compileAuth(r.value("auth"), at: at.appending("auth"), context: context) ?? (ownAuthorization ? nil : inherited?.auth)
        guard let url else { return nil }
        var target = RestTarget(
            method: method, url: url, headers: headers, query: query, body: body, success: success, retry: retry,
            idempotencyKey: idempotencyKey, idempotencyHeader: idempotencyHeader, honoursIdempotencyKey: honours, capture: capture,
            auth: auth)
        target.outcomes = outcomes
        target.limits = limits
        if let timeout { target.timeoutSeconds = max(1, timeout) }
        return target
    }

    static func compileRetry(_ r: inout ObjectReader, at: JSONPointer, context: CompileContext) -> RetrySettings {
        var retry = RetrySettings()
        if var reader = ObjectReader(r.value("retry"), at: at.appending("retry"), context: context, what: "\"retry\"") {
            retry.maxDelaySeconds = reader.duration("max_delay") ?? retry.maxDelaySeconds
            retry.giveUpAfterSeconds = reader.duration("give_up_after") ?? retry.giveUpAfterSeconds
            retry.maxAttempts = reader.int("max_attempts", range: 1...1000) ?? retry.maxAttempts
            reader.finish()
        }
        return retry
    }

    /// `[{"if": condition over response, "then": outcome}]`, in order.
    static func compileOutcomes(_ value: JSONValue?, at: JSONPointer, context: CompileContext) -> [ResponseRule] {
        guard let value else { return [] }
        guard case .array(let items) = value else {
            context.error("\"outcomes\" must be a list of {\"if\": condition, \"then\": outcome}", at: at)
            return []
        }
        var rules: [ResponseRule] = []
        for index in items.indices {
            guard var reader = ObjectReader(items[index], at: at.appending(index), context: context, what: "an outcome") else { continue }
            let source = reader.string("if", required: true)
            let condition = source.flatMap { context.expression($0, at: reader.pointer.appending("if")) }
            let then = reader.oneOf("then", ResponseOutcome.allCases.map(\.rawValue)).flatMap(ResponseOutcome.init(rawValue:))
            if reader.object["then"] == nil { context.error("missing required key \"then\"", at: reader.pointer) }
            reader.finish()
            if let condition, let source, let then { rules.append(ResponseRule(condition: condition, source: source, outcome: then)) }
        }
        return rules
    }

    static func compileAuth(_ value: JSONValue?, at: JSONPointer, context: CompileContext) -> RestAuth? {
        var auth: RestAuth?
        if var a = ObjectReader(value, at: at, context: context, what: "\"auth\"") {
            // Credentials are text with ${VARIABLES} only: no event data may reach them.
            func secret(_ key: String) -> String? {
                guard let text = a.string(key) else { return nil }
                if let template = context.template(text, at: a.pointer.appending(key)), template.hasExpressions {
                    context.error("\"\(key)\" may use ${VARIABLES} only, no {{ expressions }}", at: a.pointer.appending(key))
                }
                return text
            }
            if let token = secret("bearer") {
                auth = .bearer(token: token)
            } else if a.object["oauth2"] != nil {
                auth = compileOAuth2(a.value("oauth2"), at: a.pointer.appending("oauth2"), context: context)
            } else if let user = secret("user"), let password = secret("password") {
                auth = .basic(user: user, password: password)
            } else {
                context.error(
                    "\"auth\" needs {\"bearer\": \"${TOKEN}\"}, {\"user\": …, \"password\": …} or {\"oauth2\": {\"token_url\", \"client_id\", \"client_secret\"}}",
                    at: a.pointer)
            }
            a.finish()
        }
        return auth
    }

    /// `auth.oauth2`: `grant` (`client_credentials`, the default, or
    /// `refresh_token`), `token_url`, `client_id`, `client_secret`, optional
    /// `scope` and `client_auth` (`basic` or `body`); client credentials also
    /// take `audience`; a refresh-token grant names its stored `credential`
    /// and may give `authorization_url`, `redirect_uri` and
    /// `refresh_token_lifetime`. Text with `${VARIABLES}` only, and URLs whose
    /// scheme and host are fixed.
    static func compileOAuth2(_ value: JSONValue?, at: JSONPointer, context: CompileContext) -> RestAuth? {
        guard var o = ObjectReader(value, at: at, context: context, what: "\"oauth2\"") else { return nil }
        func setting(_ key: String, required: Bool) -> String? {
            guard let text = o.string(key, required: required) else { return nil }
            if let template = context.template(text, at: at.appending(key)), template.hasExpressions {
                context.error("\"\(key)\" may use ${VARIABLES} only, no {{ expressions }}", at: at.appending(key))
            }
            return text
        }
        func url(_ key: String, required: Bool) -> String? {
            let text = setting(key, required: required)
            if let text, !(text.hasPrefix("https://") || text.hasPrefix("http://") || text.hasPrefix("${")) {
                context.error("\"\(key)\" must start with https://, http:// or a ${VARIABLE} holding it", at: at.appending(key))
            }
            return text
        }
        let grant = o.oneOf("grant", ["client_credentials", "refresh_token"]) ?? "client_credentials"
        let tokenURL = url("token_url", required: true)
        let clientID = setting("client_id", required: true)
        let clientSecret = setting("client_secret", required: true)
        let scope = setting("scope", required: false)
        let method = o.oneOf("client_auth", ["basic", "body"]).flatMap(OAuth2ClientCredentials.ClientAuthentication.init(rawValue:)) ?? .basic
        if grant == "refresh_token" {
            let credential = o.string("credential", required: true)
            if let credential,
                credential.isEmpty
                    || !credential.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" })
            {
                context.error("a credential name may contain lower-case letters, digits, '-' and '_' only", at: at.appending("credential"))
            }
            let authorizationURL = url("authorization_url", required: false)
            let redirectURI = url("redirect_uri", required: false)
            let lifetime = o.duration("refresh_token_lifetime")
            if o.object["refresh_token_lifetime"] == nil {
                context.report(
                    .warning,
                    "no \"refresh_token_lifetime\": unless the token endpoint says how long its refresh tokens live, the bridge cannot renew "
                        + "one before it expires or alert in time (Fortnox: \"45d\")", at: at)
            }
            o.finish()
            guard let tokenURL, let clientID, let clientSecret, let credential else { return nil }
            return .oauth2RefreshToken(
                OAuth2RefreshTokenGrant(
                    credential: credential, tokenURL: tokenURL, authorizationURL: authorizationURL, redirectURI: redirectURI, clientID: clientID,
                    clientSecret: clientSecret, scope: scope, clientAuthentication: method, refreshTokenLifetimeSeconds: lifetime.map(Int64.init)))
        }
        let audience = setting("audience", required: false)
        o.finish()
        guard let tokenURL, let clientID, let clientSecret else { return nil }
        return .oauth2ClientCredentials(
            OAuth2ClientCredentials(
                tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret, scope: scope, audience: audience, clientAuthentication: method))
    }

    /// `flow`: shared `headers`, `auth`, `timeout`, `idempotency_header` and
    /// `retry`, then `steps` (each a request with `name` and an optional
    /// `if`) and an optional `on_failure` request.
    static func compileFlow(_ value: JSONValue?, context: CompileContext) -> FlowTarget? {
        let at = JSONPointer(tokens: ["flow"])
        guard var r = ObjectReader(value, at: at, context: context, what: "\"flow\"") else { return nil }
        let defaults = StepDefaults(
            headers: r.templateMap("headers"), auth: compileAuth(r.value("auth"), at: at.appending("auth"), context: context),
            timeoutSeconds: r.duration("timeout"), idempotencyHeader: r.string("idempotency_header"),
            limits: compileLimits(r.value("limits"), at: at.appending("limits"), context: context))
        let retry = compileRetry(&r, at: at, context: context)
        var steps: [FlowStep] = []
        var names = Set<String>()
        func step(_ value: JSONValue, at pointer: JSONPointer, fixedName: String?) -> FlowStep? {
            guard var s = ObjectReader(value, at: pointer, context: context, what: "a step") else { return nil }
            let name = fixedName ?? s.string("name", required: true) ?? ""
            if fixedName == nil, !name.isEmpty {
                if !name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) {
                    context.error("a step name may contain lower-case letters, digits and '_' only", at: pointer.appending("name"))
                } else if !names.insert(name).inserted {
                    context.error("duplicate step name \"\(name)\"", at: pointer.appending("name"))
                }
            }
            let conditionSource = s.string("if")
            let condition = conditionSource.flatMap { context.expression($0, at: pointer.appending("if")) }
            let readOnly = s.bool("read_only") ?? false
            let request = compileRequest(&s, at: pointer, context: context, inherited: defaults)
            s.finish()
            guard let request else { return nil }
            return FlowStep(name: name, condition: condition, conditionSource: conditionSource, request: request, readOnly: readOnly)
        }
        switch r.value("steps") {
        case .array(let items)? where !items.isEmpty:
            for index in items.indices {
                if let compiled = step(items[index], at: at.appending("steps").appending(index), fixedName: nil) { steps.append(compiled) }
            }
        default:
            context.error("\"steps\" must be a non-empty list of requests", at: r.object["steps"] == nil ? at : at.appending("steps"))
        }
        let onFailure = r.value("on_failure").flatMap { step($0, at: at.appending("on_failure"), fixedName: "on_failure") }
        r.finish()
        guard !steps.isEmpty else { return nil }
        return FlowTarget(steps: steps, onFailure: onFailure, retry: retry)
    }

    /// Whether a pointer is inside a request's `capture` or `outcomes` (the
    /// places that read the answer): `/rest/capture/…`, `/flow/steps/N/outcomes/…`,
    /// `/flow/on_failure/capture/…`; not a body key that happens to be named so.
    static func readsAnswer(_ tokens: [String]) -> Bool {
        let answerKeys: Set<String> = ["capture", "outcomes"]
        if tokens.count >= 2, tokens[0] == "rest" { return answerKeys.contains(tokens[1]) }
        if tokens.count >= 4, tokens[0] == "flow", tokens[1] == "steps" { return answerKeys.contains(tokens[3]) }
        if tokens.count >= 3, tokens[0] == "flow", tokens[1] == "on_failure" { return answerKeys.contains(tokens[2]) }
        return false
    }

    /// In a flow, `steps.<step>.<capture>` reads an earlier step's capture
    /// (or `.outcome`), `failure` exists in `on_failure` only, and `response`
    /// in a step's `capture` and `outcomes` only.
    static func checkStepPaths(context: CompileContext, flow: FlowTarget) {
        for (path, pointer, offset) in context.paths where ["steps", "failure"].contains(path.root) {
            let tokens = pointer.tokens
            let index: Int?
            if tokens.count >= 3, tokens[0] == "flow", tokens[1] == "steps" {
                index = Int(tokens[2])
            } else if tokens.count >= 2, tokens[0] == "flow", tokens[1] == "on_failure" {
                index = flow.steps.count
            } else {
                index = nil
            }
            guard let index else {
                context.error(
                    "'\(path.root)' has no value here: it is known inside a flow's steps", at: pointer, scalar: offset)
                continue
            }
            if readsAnswer(tokens) {
                context.error(
                    "'\(path.root)' has no value in capture and outcomes: they read the answer (response) and the event, not other steps",
                    at: pointer, scalar: offset)
                continue
            }
            if path.root == "failure" {
                if index != flow.steps.count { context.error("'failure' is known in on_failure only", at: pointer, scalar: offset) }
                continue
            }
            guard case .field(let stepName)? = path.segments.first else {
                context.error("read an earlier step's capture: steps.<step>.<capture>", at: pointer, scalar: offset)
                continue
            }
            let earlier = flow.steps.prefix(index)
            guard let step = earlier.first(where: { $0.name == stepName }) else {
                let offer = earlier.isEmpty ? "no step runs before this one" : "earlier steps: \(earlier.map(\.name).joined(separator: ", "))"
                context.error("steps.\(stepName): no earlier step is named \"\(stepName)\"; \(offer)", at: pointer, scalar: offset)
                continue
            }
            guard path.segments.count >= 2, case .field(let capture) = path.segments[1] else {
                context.error("read one value of step \(stepName): steps.\(stepName).<capture>", at: pointer, scalar: offset)
                continue
            }
            let provided = step.request.capture.map(\.name) + ["outcome"]
            if !provided.contains(capture) {
                context.error(
                    "steps.\(stepName).\(capture): step \(stepName) captures no \"\(capture)\"; it provides \(provided.joined(separator: ", "))",
                    at: pointer, scalar: offset)
            }
        }
    }

    static func compileCSV(_ value: JSONValue?, context: CompileContext) -> CSVTarget? {
        let at = JSONPointer(tokens: ["csv"])
        guard var r = ObjectReader(value, at: at, context: context, what: "\"csv\"") else { return nil }
        var columns: [CSVTarget.Column] = []
        let format = r.oneOf("format", ["csv", "fixed_width"]).flatMap(PayrollFileFormat.init(rawValue:)) ?? .csv
        if case .array(let items)? = r.value("columns"), !items.isEmpty {
            for (index, item) in items.enumerated() {
                guard var c = ObjectReader(item, at: at.appending("columns").appending(index), context: context, what: "a column") else { continue }
                let name = c.string("name", required: true)
                let template = c.template("value", required: true)
                let guardSetting = c.bool("formula_guard")
                if guardSetting != nil && format == .fixedWidth {
                    context.error(
                        "\"formula_guard\" does not apply to fixed_width files (import programs, not spreadsheets, read them)",
                        at: at.appending("columns").appending(index).appending("formula_guard"))
                }
                let guardFormulas = guardSetting ?? true
                let type = c.oneOf("type", CSVColumnType.allCases.map(\.rawValue)).flatMap(CSVColumnType.init(rawValue:)) ?? .text
                let fixed = compileFixedWidthField(&c, type: type, format: format, context: context)
                c.finish()
                if let name, let template {
                    columns.append(.init(name: name, value: template, formulaGuard: guardFormulas, type: type, fixed: fixed))
                }
            }
        } else {
            context.error("\"columns\" must be a non-empty list of {\"name\", \"value\"}", at: at)
        }
        let rowKey = r.template("row_key")
        let file = r.template("file", required: true)
        let schedule = r.string("schedule") ?? "0 2 * * *"
        if schedule.split(separator: " ").count != 5 {
            context.error("\"schedule\" must be a 5-field cron expression, e.g. \"0 2 * * *\"", at: at.appending("schedule"))
        }
        // Two periods must not share a file name: a local file would be replaced, an
        // SFTP upload would meet the earlier file. period.date repeats when the
        // schedule fires more than once a day.
        let cronFields = schedule.split(separator: " ")
        if let file, cronFields.count == 5, !(cronFields[0].allSatisfy(\.isNumber) && cronFields[1].allSatisfy(\.isNumber)),
            !file.source.contains("period.start"), !file.source.contains("period.end")
        {
            context.report(
                .warning,
                "\"schedule\" fires more than once a day but \"file\" names periods by {{ period.date }} only: two periods of a day "
                    + "would share a name (use {{ period.start }} in the name)", at: at.appending("file"))
        }
        let timeZone = r.string("time_zone") ?? "UTC"
        if (try? DateText.timeZone(timeZone)) == nil {
            context.error("unknown time zone \"\(timeZone)\" (use an IANA name such as Europe/Stockholm)", at: at.appending("time_zone"))
        }
        if format == .fixedWidth {
            for key in ["delimiter", "bom"] where r.value(key) != nil {
                context.error("\"\(key)\" does not apply to fixed_width files", at: at.appending(key))
            }
        }
        let delimiter = r.oneOf("delimiter", [",", ";", "\t"]) ?? ","
        let bom = r.bool("bom") ?? false
        let lineEnding = r.oneOf("line_ending", format == .fixedWidth ? ["crlf", "lf", "none"] : ["crlf", "lf"]) ?? "crlf"
        let header = r.bool("header")
        if header != nil && format == .csv {
            context.error("\"header\" applies to fixed_width files (a CSV file always has one)", at: at.appending("header"))
        }
        let onResend = r.oneOf("on_resend", ["skip", "include_if_changed", "always"]) ?? "skip"
        let emptyPeriod = r.oneOf("empty_period", ["header", "none"]) ?? "header"
        let doneMarker = r.bool("done_marker") ?? false
        var encoding = TextEncoding.utf8
        if let name = r.string("encoding") {
            if let named = TextEncoding(name: name) {
                encoding = named
            } else {
                context.error("\"encoding\" must be one of \"utf-8\", \"iso-8859-1\" (\"latin1\"), \"windows-1252\"", at: at.appending("encoding"))
            }
        }
        if bom && encoding != .utf8 {
            context.error("\"bom\" is a UTF-8 byte order mark; \(encoding.rawValue) files have none", at: at.appending("bom"))
        }
        let unencodable = r.oneOf("unencodable", ["transliterate", "replace", "fail"]) ?? "transliterate"
        let replacement = r.string("replacement")
        if let replacement, replacement.unicodeScalars.count != 1 || !(0x20...0x7E).contains(replacement.unicodeScalars.first?.value ?? 0) {
            context.error("\"replacement\" must be one printable ASCII character", at: at.appending("replacement"))
        }
        if replacement != nil && unencodable != "replace" {
            context.error("\"replacement\" applies only with \"unencodable\": \"replace\"", at: at.appending("replacement"))
        }
        let sftp = compileSFTP(r.value("sftp"), file: file, at: at, context: context)
        r.finish()
        guard let file else { return nil }
        var target = CSVTarget(
            columns: columns, rowKey: rowKey, file: file, schedule: schedule, timeZone: timeZone, delimiter: delimiter,
            bom: bom, lineEnding: lineEnding, onResend: onResend, emptyPeriod: emptyPeriod, doneMarker: doneMarker)
        target.encoding = encoding
        target.sftp = sftp
        target.format = format
        target.header = format == .csv || header == true
        if format == .fixedWidth && header == true {
            for (index, column) in columns.enumerated() {
                if let fixed = column.fixed, !fixed.cut, column.name.unicodeScalars.count > fixed.width {
                    context.error(
                        "the header \"\(column.name)\" is longer than the column's width \(fixed.width) (overflow: fail would hold back every file)",
                        at: at.appending("columns").appending(index).appending("name"))
                }
            }
        }
        switch unencodable {
        case "fail": target.unencodable = .fail
        case "replace": target.unencodable = .replace(replacement?.utf8.first ?? UInt8(ascii: "?"))
        default: target.unencodable = .transliterate
        }
        return target
    }

    /// A column's `width`, `align`, `pad` and `overflow`: required width in a
    /// fixed_width file, none of them in a CSV file.
    static func compileFixedWidthField(
        _ c: inout ObjectReader, type: CSVColumnType, format: PayrollFileFormat, context: CompileContext
    ) -> FixedWidthField? {
        let width = c.int("width", range: 1...10_000)
        let align = c.oneOf("align", ["left", "right"])
        let pad = c.string("pad")
        let overflow = c.oneOf("overflow", ["fail", "cut"])
        guard format == .fixedWidth else {
            for (key, value) in [("width", width as Any?), ("align", align), ("pad", pad), ("overflow", overflow)] where value != nil {
                context.error("\"\(key)\" applies to fixed_width files (\"format\": \"fixed_width\")", at: c.pointer.appending(key))
            }
            return nil
        }
        if c.value("width") == nil { context.error("a fixed_width column needs a \"width\"", at: c.pointer) }
        if let pad, pad.unicodeScalars.count != 1 || !(0x20...0x7E).contains(pad.unicodeScalars.first?.value ?? 0) {
            context.error("\"pad\" must be one printable ASCII character", at: c.pointer.appending("pad"))
        }
        let alignRight = align.map { $0 == "right" } ?? (type == .number)
        // Rules that keep amounts and dates what they are: a cut number is another number, and zeros after one multiply it.
        if overflow == "cut" && type != .text {
            context.error(
                "a \(type.rawValue) column cannot be cut (12345 would become 123): use \"overflow\": \"fail\"", at: c.pointer.appending("overflow"))
        }
        if pad == "0" && !alignRight {
            context.error("\"pad\": \"0\" needs \"align\": \"right\" (zeros after a number change it)", at: c.pointer.appending("pad"))
        }
        return FixedWidthField(width: width ?? 1, alignRight: alignRight, pad: pad?.utf8.first ?? UInt8(ascii: " "), cut: overflow == "cut")
    }

    /// The `sftp` block, required exactly when `file` is an `sftp://` URL.
    static func compileSFTP(_ value: JSONValue?, file: Template?, at: JSONPointer, context: CompileContext) -> SFTPSettings? {
        let remote = file?.source.lowercased().hasPrefix("sftp://") ?? false
        guard value != nil else {
            if remote {
                context.error(
                    "an sftp:// \"file\" needs an \"sftp\" block: {\"user\", \"private_key_file\", \"host_key_sha256\" or \"known_hosts\"}",
                    at: at.appending("file"))
            }
            return nil
        }
        let pointer = at.appending("sftp")
        guard var r = ObjectReader(value, at: pointer, context: context, what: "\"sftp\"") else { return nil }
        // `${SFTP_URL}/…` is checked when the name is rendered; a local path is wrong here already.
        if !remote && !(file?.source.hasPrefix("${") ?? true) {
            context.error("\"sftp\" applies only when \"file\" is an sftp://host/path URL", at: pointer)
        }
        // Credentials are text with ${VARIABLES} only: no event data may reach them.
        func setting(_ key: String, required: Bool = false) -> String? {
            guard let text = r.string(key, required: required) else { return nil }
            if let template = context.template(text, at: pointer.appending(key)), template.hasExpressions {
                context.error("\"\(key)\" may use ${VARIABLES} only, no {{ expressions }}", at: pointer.appending(key))
            }
            return text
        }
        let user = setting("user", required: true)
        let key = setting("private_key_file", required: true)
        let passphrase = setting("passphrase")
        if let passphrase, !(passphrase.hasPrefix("${") && passphrase.hasSuffix("}") && passphrase.dropFirst(2).allSatisfy { $0 != "$" }) {
            context.error("\"passphrase\" must be one ${VARIABLE} (a secret never sits in a mapping file)", at: pointer.appending("passphrase"))
        }
        let fingerprint = setting("host_key_sha256")
        let knownHosts = setting("known_hosts")
        if (fingerprint == nil) == (knownHosts == nil) {
            context.error(
                "the server's host key must be pinned: exactly one of \"host_key_sha256\" (ssh-keygen -lf) or \"known_hosts\" (a file)",
                at: pointer)
        }
        let mode = r.string("file_mode").map { text -> Int in
            guard let mode = Int(text, radix: 8), (0...0o777).contains(mode) else {
                context.error("\"file_mode\" must be octal, e.g. \"0640\"", at: pointer.appending("file_mode"))
                return 0o640
            }
            return mode
        }
        r.finish()
        guard let user, let key else { return nil }
        return SFTPSettings(
            user: user, privateKeyFile: key, passphrase: passphrase, hostKeySHA256: fingerprint, knownHosts: knownHosts, fileMode: mode ?? 0o640)
    }

    static func compileArchive(_ value: JSONValue?, context: CompileContext) -> ArchiveTarget? {
        let at = JSONPointer(tokens: ["archive"])
        guard var r = ObjectReader(value, at: at, context: context, what: "\"archive\"") else { return nil }
        let files = r.templateMap("files")
        if files.isEmpty { context.error("\"files\" must map file kinds to URL expressions", at: at) }
        // The default goes through the context too, so its paths count as read.
        let directory = r.template("directory") ?? context.template("{{ company.id }}/{{ candidate.id }}", at: at.appending("directory"))
        var hosts: [String] = []
        if let value = r.value("allowed_hosts") {
            if case .array(let items) = value, items.allSatisfy({ $0.stringValue != nil }) {
                hosts = items.compactMap(\.stringValue)
            } else {
                context.error("\"allowed_hosts\" must be a list of host patterns", at: at.appending("allowed_hosts"))
            }
        }
        let maxBytes = r.int("max_bytes", range: 1...(1 << 34)) ?? 50 << 20
        let retention = r.int("retention_days", range: 1...36500)
        var fileName = ArchiveFileName.standard
        if let pattern = r.string("file_name") {
            let (parsed, problem) = ArchiveFileName.parse(pattern)
            if let parsed { fileName = parsed } else { context.error(problem ?? "invalid file name pattern", at: at.appending("file_name")) }
        }
        r.finish()
        guard let directory else { return nil }
        return ArchiveTarget(
            files: files.map { (kind: $0.name, value: $0.value) }, directory: directory, allowedHosts: hosts, maxBytes: maxBytes,
            retentionDays: retention, fileName: fileName)
    }

    /// `response` is the answer in `rest.capture`, and in the request of a
    /// mapping with `after` the other mapping's capture; anywhere else (a
    /// condition, an effect key, a CSV cell) it has no value when the event is
    /// planned. Returns the capture names an `after` request reads, for the
    /// cross-check against what the other mapping captures.
    static func checkResponsePaths(context: CompileContext, after: String?) -> [MappingFile.ResponseRead] {
        var reads: [MappingFile.ResponseRead] = []
        for (path, pointer, offset) in context.paths where path.root == "response" {
            let tokens = pointer.tokens
            if readsAnswer(tokens) { continue }
            guard tokens.count >= 2, tokens[0] == "rest" else {
                context.error(
                    "'response' has no value here: it is known in a request's capture and outcomes, and in the request of a mapping with \"after\"",
                    at: pointer,
                    scalar: offset)
                continue
            }
            if tokens[1] == "capture" { continue }
            guard after != nil else {
                context.error(
                    "'response' in a request needs \"after\": it is the capture of the mapping named there", at: pointer, scalar: offset)
                continue
            }
            guard case .field(let name)? = path.segments.first else {
                context.error("read one captured value: response.<capture name>", at: pointer, scalar: offset)
                continue
            }
            reads.append(MappingFile.ResponseRead(name: name, location: context.location(pointer, scalar: offset)))
        }
        return reads
    }

    /// Paths are open-ended (payloads grow): names outside the documented
    /// scope are warnings, errors only under `check --strict`.
    static func checkPaths(context: CompileContext, lookups: [String: JSONObject]) {
        for (path, pointer, offset) in context.paths {
            if !DocumentedSchema.roots.contains(path.root) {
                context.report(
                    .warning, "unknown name '\(path.root)' (documented: \(DocumentedSchema.roots.sorted().joined(separator: ", ")))", at: pointer,
                    scalar: offset)
                continue
            }
            if let fields = DocumentedSchema.fields[path.root], case .field(let first)? = path.segments.first, !fields.contains(first) {
                context.report(.warning, "'\(path.root).\(first)' is not a documented field of \(path.root)", at: pointer, scalar: offset)
            }
        }
    }
}

/// The documented shape of Jobylon's payloads (shared/jobylon/README.md), for warnings.
enum DocumentedSchema {
    static let roots: Set<String> = [
        "candidate", "job", "company", "data", "event", "companies", "now", "period", "response", "steps", "failure",
        "company_id", "internal_id", "company_name", "has_config", "dt_created", "settings",
    ]
    static let fields: [String: Set<String>] = [
        "candidate": [
            "id", "internal_id", "first_name", "last_name", "email", "phone_number", "message", "status", "files", "data", "answers",
            "request_author",
        ],
        "job": [
            "id", "internal_id", "title", "from_date", "to_date", "description", "skills", "locations", "requisition", "experience", "language",
            "ad_url", "layers", "categories", "departments", "settings",
        ],
        "company": ["id", "internal_id", "settings"],
        "event": ["id", "type", "action", "received_at"],
    ]
}
