import JSON

/// A string of a mapping file: literal text, `{{ expression }}` parts and
/// `${VARIABLE}` / `${VARIABLE:-default}` placeholders.
///
/// A template that is exactly one expression keeps the expression's JSON
/// type (a number stays a number); anything else renders to a string.
/// Placeholders are never resolved while rendering a job: they stay in the
/// stored job as written and are injected at send time, so secrets are never
/// persisted.
public struct Template: Sendable, Hashable {
    /// One piece of the template text, in order; adjacent literal text is one `text`.
    public enum Part: Sendable, Hashable {
        case text(String)
        /// `offset`: scalar offset of the expression's first character in the template text.
        case expression(Expression, offset: Int)
        case variable(name: String, fallback: String?)
    }

    /// The pieces in text order.
    public var parts: [Part]
    /// The text as written in the mapping file (a CSV file name falls back to it
    /// when rendering fails).
    public var source: String

    /// Exactly one `{{ }}` and nothing around it, not even a space: then rendering
    /// keeps the expression's JSON type.
    public var isSingleExpression: Bool {
        if parts.count == 1, case .expression = parts[0] { return true }
        return false
    }

    /// Whether any part depends on the event (credentials must have none).
    public var hasExpressions: Bool {
        parts.contains { if case .expression = $0 { return true } else { return false } }
    }

    /// Every `${NAME}` with its `:-` default, in order and with repeats.
    public var variables: [(name: String, fallback: String?)] {
        parts.compactMap { if case .variable(let name, let fallback) = $0 { return (name, fallback) } else { return nil } }
    }

    /// `}}` inside a quoted string does not close an expression, and `${}` defaults
    /// may nest; a syntax error carries its scalar offset in `text`.
    public static func parse(_ text: String) throws(ExpressionSyntaxError) -> Template {
        let scalars = Array(text.unicodeScalars)
        var parts: [Part] = []
        var literal = String.UnicodeScalarView()
        var i = 0
        func flush() {
            if !literal.isEmpty {
                parts.append(.text(String(literal)))
                literal = String.UnicodeScalarView()
            }
        }
        while i < scalars.count {
            if scalars[i] == "{", i + 1 < scalars.count, scalars[i + 1] == "{" {
                // Find the closing braces outside quoted strings.
                var j = i + 2
                var quote: Unicode.Scalar? = nil
                var end: Int? = nil
                while j < scalars.count {
                    let c = scalars[j]
                    if let q = quote {
                        if c == "\\" { j += 1 } else if c == q { quote = nil }
                    } else if c == "'" || c == "\"" {
                        quote = c
                    } else if c == "}", j + 1 < scalars.count, scalars[j + 1] == "}" {
                        end = j
                        break
                    }
                    j += 1
                }
                guard let end else { throw ExpressionSyntaxError(offset: i, message: "'{{' is not closed by '}}'") }
                flush()
                let inner = String(String.UnicodeScalarView(scalars[(i + 2)..<end]))
                let expression: Expression
                do {
                    expression = try ExpressionParser.parse(inner)
                } catch {
                    throw ExpressionSyntaxError(offset: i + 2 + error.offset, message: error.message)
                }
                parts.append(.expression(expression, offset: i + 2))
                i = end + 2
            } else if scalars[i] == "$", i + 1 < scalars.count, scalars[i + 1] == "{" {
                // Defaults may nest: ${EXPORT_DIR:-${DATA_DIR}/exports}.
                guard let close = Placeholder.closingBrace(scalars, from: i + 2) else {
                    throw ExpressionSyntaxError(offset: i, message: "'${' is not closed by '}'")
                }
                let (name, fallback) = Placeholder.split(String(String.UnicodeScalarView(scalars[(i + 2)..<close])))
                guard !name.isEmpty,
                    name.unicodeScalars.allSatisfy({ $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) })
                else {
                    throw ExpressionSyntaxError(offset: i + 2, message: "invalid variable name '\(name)': letters, digits and '_' only")
                }
                flush()
                parts.append(.variable(name: name, fallback: fallback))
                i = close + 1
            } else {
                literal.append(scalars[i])
                i += 1
            }
        }
        flush()
        return Template(parts: parts, source: text)
    }

    /// The text before the first expression (variables count as fixed text).
    var fixedPrefix: (text: String, complete: Bool) {
        var out = ""
        for part in parts {
            switch part {
            case .text(let t): out += t
            case .variable(let name, let fallback): out += "${\(name)\(fallback.map { ":-" + $0 } ?? "")}"
            case .expression: return (out, false)
            }
        }
        return (out, true)
    }
}
