import JSON

/// What expressions can see: the event's `data` keys as root names, plus
/// `data`, `event`, `companies`, `now`, and what a stage adds (`period`,
/// `response`). Built before evaluation so evaluation itself stays pure.
public struct EvaluationScope: Sendable {
    /// The event's `data`; its keys are also bare root names (`candidate.id` reads
    /// `data.candidate.id`) unless a name in `names` shadows them.
    public var data: JSONValue
    /// Root names that win over `data`'s keys: `data`, `event`, `companies`, `now`
    /// and whatever the stage passed as `extra`.
    public var names: [String: JSONValue]
    /// The mapping's lookup tables, by name.
    public var lookups: [String: JSONObject]
    /// The injected clock's "now", as ISO-8601 UTC text.
    public var now: String
    /// Set while a `rest` request is rendered: every `$` that is not a
    /// template's own `${VARIABLE}` comes out doubled, so event data can never
    /// become a placeholder that send time fills with a secret (`StoredText`).
    public var escapesPlaceholders = false
    /// Root names whose values exist only later (`response` of an `after`
    /// mapping while its job is planned): a template that reads one is not
    /// evaluated now (it renders `null`) instead of failing the job.
    public var deferred: Set<String> = []

    /// `extra` is applied last, so it may replace a standard name; `now` is expected
    /// as ISO-8601 UTC text, as `MappingClock.iso8601` writes it.
    public init(
        data: JSONValue, event: JSONValue, companies: JSONValue = .object(JSONObject()), now: String, extra: [String: JSONValue] = [:],
        lookups: [String: JSONObject] = [:]
    ) {
        self.data = data
        var names: [String: JSONValue] = ["data": data, "event": event, "companies": companies, "now": .string(now)]
        for (key, value) in extra { names[key] = value }
        self.names = names
        self.lookups = lookups
        self.now = now
    }

    func root(_ name: String) -> JSONValue? {
        names[name] ?? data[name]
    }
}

/// Why an expression could not be evaluated for one event. Messages name the
/// path or filter, never the value (it may be personal data).
public struct EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Names the field, path or filter at fault, never the value: it ends up in a
    /// job's stored reason.
    public var message: String
    /// Set when the expression read a root name that is deferred in its scope
    /// (`EvaluationScope.deferred`): not a failure, the value comes later.
    public var deferredRoot: String?
    /// Where in a structured template (a body) the failing leaf is, outermost
    /// key first (`Employee`, `PersonalIdentityNumber`): the operator's field.
    public var field: [String] = []

    /// The message must not quote event data (see the type).
    public init(_ message: String) {
        self.message = message
    }

    /// The expression read `root`, which has no value yet.
    init(deferred root: String) {
        self.message = "'\(root)' is known only when the job is sent"
        self.deferredRoot = root
    }

    public var description: String { message }

    /// The same failure one level further out in a structured template.
    func inside(_ key: String) -> EvaluationError {
        var outer = self
        outer.field.insert(key, at: 0)
        return outer
    }

    /// `.Employee.PersonalIdentityNumber`, or nothing for a plain template.
    public var fieldSuffix: String { field.isEmpty ? "" : "." + field.joined(separator: ".") }
}

enum Evaluator {
    static func evaluate(_ expression: Expression, in scope: EvaluationScope) throws(EvaluationError) -> JSONValue? {
        switch expression {
        case .literal(let value):
            return value
        case .path(let path):
            return try resolve(path, in: scope)
        case .list(let items):
            var values: [JSONValue] = []
            for item in items { values.append(try evaluate(item, in: scope) ?? .null) }
            return .array(values)
        case .filter(let input, let call):
            let value = try evaluate(input, in: scope)
            var arguments: [JSONValue?] = []
            for argument in call.arguments { arguments.append(try evaluate(argument, in: scope)) }
            guard let filter = Filters.all[call.name] else { throw EvaluationError("unknown filter '\(call.name)'") }
            do {
                return try filter.apply(value, arguments, FilterContext(scope: scope, input: input))
            } catch {
                throw EvaluationError("\(call.name): \(error.message)")
            }
        case .not(let inner):
            return .bool(!truthy(try evaluate(inner, in: scope)))
        case .and(let left, let right):
            guard truthy(try evaluate(left, in: scope)) else { return .bool(false) }
            return .bool(truthy(try evaluate(right, in: scope)))
        case .or(let left, let right):
            if truthy(try evaluate(left, in: scope)) { return .bool(true) }
            return .bool(truthy(try evaluate(right, in: scope)))
        case .conditional(let condition, let then, let otherwise):
            return truthy(try evaluate(condition, in: scope)) ? try evaluate(then, in: scope) : try evaluate(otherwise, in: scope)
        case .compare(let left, let comparison, let right):
            return .bool(compare(try evaluate(left, in: scope), comparison, try evaluate(right, in: scope)))
        }
    }

    static func resolve(_ path: Expression.Path, in scope: EvaluationScope) throws(EvaluationError) -> JSONValue? {
        if !scope.deferred.isEmpty, scope.deferred.contains(path.root) { throw EvaluationError(deferred: path.root) }
        guard let root = scope.root(path.root) else { return nil }
        // Up to the first wildcard a path follows one value: walked without
        // arrays (most paths, e.g. `candidate.first_name`, end here). From a
        // wildcard or a missing value on, the general walk below takes over.
        var single = root
        let segments = path.segments
        var start = 0
        while start < segments.count {
            if case .wildcard = segments[start] { break }
            guard let segment = try concrete(segments[start], in: scope) else { return nil }
            start += 1
            guard let child = child(of: single, at: segment) else { return try resolveRest(segments[start...], from: [], in: scope) }
            single = child
        }
        if start == segments.count { return single }
        return try resolveRest(segments[start...], from: [single], in: scope)
    }

    /// The general walk: every value the path reaches, fanned out by wildcards.
    static func resolveRest(_ segments: ArraySlice<Expression.Path.Segment>, from values: [JSONValue], in scope: EvaluationScope)
        throws(EvaluationError) -> JSONValue?
    {
        var current = values
        var fannedOut = false
        for segment in segments {
            guard let segment = try concrete(segment, in: scope) else { return nil }
            if case .wildcard = segment {
                fannedOut = true
                current = current.flatMap { $0.arrayValue ?? [] }
            } else {
                current = current.compactMap { child(of: $0, at: segment) }
            }
        }
        if fannedOut { return .array(current) }
        return current.first
    }

    /// A computed segment as the key (text) or index (number) it evaluates to;
    /// nil when it evaluates to anything else (the path then reaches nothing).
    /// Other segments as they are.
    static func concrete(_ segment: Expression.Path.Segment, in scope: EvaluationScope) throws(EvaluationError) -> Expression.Path.Segment? {
        guard case .computed(let expression) = segment else { return segment }
        switch try evaluate(expression, in: scope) {
        case .string(let key)?: return .field(key)
        case .number(let n)?: return n.int64Value.flatMap { Int(exactly: $0) }.map(Expression.Path.Segment.index) ?? .field(n.lexeme)
        default: return nil
        }
    }

    /// The value a field or index segment reaches from `value` (negative
    /// indexes count from the end); nil for a wildcard or computed segment.
    static func child(of value: JSONValue, at segment: Expression.Path.Segment) -> JSONValue? {
        switch segment {
        case .field(let name): return value[name]
        case .index(let index):
            guard let array = value.arrayValue else { return nil }
            let resolved = index < 0 ? array.count + index : index
            return array.indices.contains(resolved) ? array[resolved] : nil
        case .wildcard, .computed: return nil
        }
    }

    /// Missing, null, false, "", 0, [] and {} are false.
    static func truthy(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .string(let s)?: return !s.isEmpty
        case .number(let n)?: return n.doubleValue != 0
        case .array(let a)?: return !a.isEmpty
        case .object(let o)?: return !o.isEmpty
        }
    }

    static func compare(_ left: JSONValue?, _ comparison: Expression.Comparison, _ right: JSONValue?) -> Bool {
        switch comparison {
        case .equal: return equal(left, right)
        case .notEqual: return !equal(left, right)
        case .contains:
            switch right {
            case .array(let items)?: return items.contains { equal(left, $0) }
            case .string(let s)?: return left?.stringValue.map { s.contains($0) } ?? false
            case .object(let o)?: return left?.stringValue.map { o[$0] != nil } ?? false
            default: return false
            }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = order(left, right) else { return false }
            switch comparison {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    /// Numbers compare by value (`20 == 20.0`); everything else structurally.
    /// Missing equals null, so `x == null` is true for an absent field.
    static func equal(_ left: JSONValue?, _ right: JSONValue?) -> Bool {
        switch (left ?? .null, right ?? .null) {
        case (.number(let a), .number(let b)): return numericOrder(a, b) == 0
        case (let a, let b): return a == b
        }
    }

    static func order(_ left: JSONValue?, _ right: JSONValue?) -> Int? {
        switch (left, right) {
        case (.number(let a)?, .number(let b)?): return numericOrder(a, b)
        case (.string(let a)?, .string(let b)?): return a < b ? -1 : (a == b ? 0 : 1)
        default: return nil
        }
    }

    static func numericOrder(_ a: JSONNumber, _ b: JSONNumber) -> Int {
        if let x = a.int64Value, let y = b.int64Value { return x < y ? -1 : (x == y ? 0 : 1) }
        let x = a.doubleValue
        let y = b.doubleValue
        return x < y ? -1 : (x == y ? 0 : 1)
    }

    /// How a value reads inside mixed text.
    static func text(_ value: JSONValue?) -> String {
        JSONValue.plainText(value)
    }
}

extension Template {
    /// Renders for one event, or `null` when it reads a deferred name (see
    /// `EvaluationScope.deferred`); other errors are thrown.
    public func renderUnlessDeferred(in scope: EvaluationScope) throws(EvaluationError) -> JSONValue {
        do {
            return try render(in: scope)
        } catch {
            if error.deferredRoot != nil { return .null }
            throw error
        }
    }

    /// Renders for one event. Placeholders stay as written (`${NAME}`).
    public func render(in scope: EvaluationScope) throws(EvaluationError) -> JSONValue {
        let escapes = scope.escapesPlaceholders
        if isSingleExpression, case .expression(let expression, _) = parts[0] {
            let value = try Evaluator.evaluate(expression, in: scope) ?? .null
            return escapes ? StoredText.escape(value) : value
        }
        var out = ""
        for part in parts {
            switch part {
            case .text(let text): out += escapes ? StoredText.escape(text) : text
            case .variable(let name, let fallback): out += "${\(name)\(fallback.map { ":-" + $0 } ?? "")}"
            case .expression(let expression, _):
                let text = Evaluator.text(try Evaluator.evaluate(expression, in: scope))
                out += escapes ? StoredText.escape(text) : text
            }
        }
        return .string(out)
    }
}
