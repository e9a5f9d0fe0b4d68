import JSON

/// A parsed expression of the mapping language, e.g.
/// `candidate.data.iban | iban | required` or `candidate.status.group == 20`.
///
/// Offsets are in Unicode scalars from the start of the expression's text, so
/// errors can be mapped back to `file:line:column` through the JSON source map.
public indirect enum Expression: Sendable, Hashable {
    case literal(JSONValue)
    case path(Path)
    case list([Expression])
    case filter(Expression, FilterCall)
    case not(Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(Expression, Comparison, Expression)
    case conditional(Expression, then: Expression, else: Expression)

    /// Raw values are the operators as written. `==` compares numbers by value;
    /// `in` tests membership of an array, a substring of a string or a key of an
    /// object; `<` and the like are false unless both sides are numbers or both strings.
    public enum Comparison: String, Sendable, Hashable {
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case contains = "in"
    }

    /// `root.segment[0][*]…`: a name, then fields, indexes and wildcards.
    public struct Path: Sendable, Hashable, CustomStringConvertible {
        /// One step after the root. A `wildcard` fans out over an array and makes the
        /// path's result an array; a literal `index` is 0 or more, or -1 for the last element.
        public enum Segment: Sendable, Hashable {
            case field(String)
            case index(Int)
            case wildcard
            /// `[expression]`: a key (text) or an index (number) computed from the event,
            /// e.g. `companies[company.id]`.
            case computed(Expression)
        }

        /// A scope name (`data`, `event`, `now`, …) or a key of the event's `data`.
        public var root: String
        /// Steps after the root, in order; empty for a bare name.
        public var segments: [Segment]
        /// Scalar offset of the root name in the expression text; the compiler adds the
        /// template part's own offset to point into the file.
        public var offset: Int

        public var description: String {
            var out = root
            for segment in segments {
                switch segment {
                case .field(let name): out += "." + name
                case .index(let n): out += "[\(n)]"
                case .wildcard: out += "[*]"
                case .computed: out += "[…]"
                }
            }
            return out
        }
    }

    /// `| name: arg, …` applied to the value on its left. Arguments are primaries
    /// (literals, paths, lists, parentheses), so `a | default: b | upper` applies
    /// `upper` to the result, not to `b`.
    public struct FilterCall: Sendable, Hashable {
        /// Whether it names a known filter, with the right arity, is checked at compile time.
        public var name: String
        /// Evaluated after the input, left to right; a missing value reaches the filter as `nil`.
        public var arguments: [Expression]
        /// Scalar offset of the filter's name, where unknown-filter and arity errors point.
        public var offset: Int
    }
}

/// A syntax error inside one expression, at a scalar offset of its text.
public struct ExpressionSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Unicode-scalar offset into the text that was parsed (into the whole template
    /// text once `Template.parse` has added its part's start).
    public var offset: Int
    /// Says what was expected and what was found; it may quote the expression,
    /// which is mapping source, not event data.
    public var message: String

    public var description: String { message }
}

/// Recursive-descent parser of the expression language (grammar in
/// docs/MAPPINGS.md). Written by hand: no package parses this small language,
/// and hand-written code gives exact error offsets.
struct ExpressionParser {
    enum Token: Hashable {
        case identifier(String)
        case string(String)
        case number(JSONNumber)
        case symbol(String)
        case end
    }

    let scalars: [Unicode.Scalar]
    var position = 0
    var token: Token = .end
    var tokenOffset = 0

    init(_ text: String) {
        self.scalars = Array(text.unicodeScalars)
    }

    static func parse(_ text: String) throws(ExpressionSyntaxError) -> Expression {
        var parser = ExpressionParser(text)
        try parser.advance()
        if parser.token == .end { throw ExpressionSyntaxError(offset: 0, message: "empty expression") }
        let expression = try parser.parseConditional()
        guard parser.token == .end else { throw parser.unexpected("end of expression") }
        return expression
    }

    // MARK: Lexer

    func unexpected(_ expected: String) -> ExpressionSyntaxError {
        let found: String
        switch token {
        case .end: found = "end of expression"
        case .identifier(let name): found = "'\(name)'"
        case .string: found = "a string"
        case .number(let n): found = "number \(n.lexeme)"
        case .symbol(let s): found = "'\(s)'"
        }
        return ExpressionSyntaxError(offset: tokenOffset, message: "expected \(expected), found \(found)")
    }

    mutating func advance() throws(ExpressionSyntaxError) {
        while position < scalars.count, scalars[position].properties.isWhitespace { position += 1 }
        tokenOffset = position
        guard position < scalars.count else {
            token = .end
            return
        }
        let c = scalars[position]
        if c == "_" || c.properties.isAlphabetic {
            var name = ""
            while position < scalars.count,
                scalars[position] == "_" || scalars[position].properties.isAlphabetic || ("0"..."9").contains(scalars[position])
            {
                name.unicodeScalars.append(scalars[position])
                position += 1
            }
            token = .identifier(name)
            return
        }
        if ("0"..."9").contains(c) || (c == "-" && position + 1 < scalars.count && ("0"..."9").contains(scalars[position + 1])) {
            var text = ""
            text.unicodeScalars.append(c)
            position += 1
            while position < scalars.count, ("0"..."9").contains(scalars[position]) || ".eE+-".unicodeScalars.contains(scalars[position]) {
                // A '-' or '+' only belongs to an exponent.
                if "+-".unicodeScalars.contains(scalars[position]), !(text.hasSuffix("e") || text.hasSuffix("E")) { break }
                text.unicodeScalars.append(scalars[position])
                position += 1
            }
            guard let number = JSONNumber(lexeme: text) else {
                throw ExpressionSyntaxError(offset: tokenOffset, message: "invalid number '\(text)'")
            }
            token = .number(number)
            return
        }
        if c == "'" || c == "\"" {
            position += 1
            var value = ""
            while position < scalars.count, scalars[position] != c {
                if scalars[position] == "\\", position + 1 < scalars.count {
                    position += 1
                    switch scalars[position] {
                    case "n": value.unicodeScalars.append("\n")
                    case "t": value.unicodeScalars.append("\t")
                    default: value.unicodeScalars.append(scalars[position])
                    }
                } else {
                    value.unicodeScalars.append(scalars[position])
                }
                position += 1
            }
            guard position < scalars.count else {
                throw ExpressionSyntaxError(offset: tokenOffset, message: "unterminated string literal")
            }
            position += 1
            token = .string(value)
            return
        }
        for symbol in ["==", "!=", "<=", ">=", "&&", "||"] {
            let s = Array(symbol.unicodeScalars)
            if position + 1 < scalars.count, scalars[position] == s[0], scalars[position + 1] == s[1] {
                position += 2
                token = .symbol(symbol)
                return
            }
        }
        if "|:,.[]()<>?!*".unicodeScalars.contains(c) {
            position += 1
            token = .symbol(String(c))
            return
        }
        throw ExpressionSyntaxError(offset: position, message: "unexpected character '\(c)'")
    }

    mutating func expect(_ symbol: String) throws(ExpressionSyntaxError) {
        guard token == .symbol(symbol) else { throw unexpected("'\(symbol)'") }
        try advance()
    }

    // MARK: Grammar

    mutating func parseConditional() throws(ExpressionSyntaxError) -> Expression {
        let condition = try parseOr()
        guard token == .symbol("?") else { return condition }
        try advance()
        let then = try parseConditional()
        try expect(":")
        let otherwise = try parseConditional()
        return .conditional(condition, then: then, else: otherwise)
    }

    mutating func parseOr() throws(ExpressionSyntaxError) -> Expression {
        var left = try parseAnd()
        while token == .identifier("or") || token == .symbol("||") {
            try advance()
            left = .or(left, try parseAnd())
        }
        return left
    }

    mutating func parseAnd() throws(ExpressionSyntaxError) -> Expression {
        var left = try parseNot()
        while token == .identifier("and") || token == .symbol("&&") {
            try advance()
            left = .and(left, try parseNot())
        }
        return left
    }

    mutating func parseNot() throws(ExpressionSyntaxError) -> Expression {
        if token == .identifier("not") || token == .symbol("!") {
            try advance()
            return .not(try parseNot())
        }
        return try parseComparison()
    }

    mutating func parseComparison() throws(ExpressionSyntaxError) -> Expression {
        let left = try parsePipe()
        let comparison: Expression.Comparison?
        switch token {
        case .symbol(let s): comparison = Expression.Comparison(rawValue: s)
        case .identifier("in"): comparison = .contains
        default: comparison = nil
        }
        guard let comparison else { return left }
        try advance()
        return .compare(left, comparison, try parsePipe())
    }

    mutating func parsePipe() throws(ExpressionSyntaxError) -> Expression {
        var value = try parsePrimary()
        while token == .symbol("|") {
            try advance()
            guard case .identifier(let name) = token else { throw unexpected("a filter name after '|'") }
            let offset = tokenOffset
            try advance()
            var arguments: [Expression] = []
            if token == .symbol(":") {
                try advance()
                arguments.append(try parsePrimary())
                while token == .symbol(",") {
                    try advance()
                    arguments.append(try parsePrimary())
                }
            }
            value = .filter(value, Expression.FilterCall(name: name, arguments: arguments, offset: offset))
        }
        return value
    }

    mutating func parsePrimary() throws(ExpressionSyntaxError) -> Expression {
        switch token {
        case .string(let s):
            try advance()
            return .literal(.string(s))
        case .number(let n):
            try advance()
            return .literal(.number(n))
        case .identifier("true"):
            try advance()
            return .literal(.bool(true))
        case .identifier("false"):
            try advance()
            return .literal(.bool(false))
        case .identifier("null"):
            try advance()
            return .literal(.null)
        case .identifier(let name) where !["and", "or", "not", "in"].contains(name):
            return .path(try parsePath(root: name))
        case .symbol("("):
            try advance()
            let inner = try parseConditional()
            try expect(")")
            return inner
        case .symbol("["):
            try advance()
            var items: [Expression] = []
            if token != .symbol("]") {
                items.append(try parseConditional())
                while token == .symbol(",") {
                    try advance()
                    items.append(try parseConditional())
                }
            }
            try expect("]")
            return .list(items)
        default:
            throw unexpected("a value, a path or '('")
        }
    }

    mutating func parsePath(root: String) throws(ExpressionSyntaxError) -> Expression.Path {
        var path = Expression.Path(root: root, segments: [], offset: tokenOffset)
        try advance()
        while true {
            if token == .symbol(".") {
                try advance()
                guard case .identifier(let name) = token else { throw unexpected("a field name after '.'") }
                path.segments.append(.field(name))
                try advance()
            } else if token == .symbol("[") {
                try advance()
                switch token {
                case .number(let n):
                    guard let index = n.int64Value, let int = Int(exactly: index), index >= 0 || index == -1 else {
                        throw unexpected("an array index")
                    }
                    path.segments.append(.index(int))
                case .symbol("*"):
                    path.segments.append(.wildcard)
                case .string(let key):
                    path.segments.append(.field(key))
                    try advance()
                    if token != .symbol("]") {
                        // A quoted key followed by more: it was the start of an expression after all.
                        throw unexpected("']'")
                    }
                    try advance()
                    continue
                default:
                    path.segments.append(.computed(try parseConditional()))
                    try expect("]")
                    continue
                }
                try advance()
                try expect("]")
            } else {
                return path
            }
        }
    }
}
