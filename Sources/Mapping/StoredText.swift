import JSON

/// How a rendered `rest` request keeps its `${VARIABLE}` placeholders apart
/// from event data until send time.
///
/// Secrets are never rendered into a stored job: a template's `${NAME}` stays
/// in the stored request as written and is filled in when the request is
/// sent. Event data may contain the same characters (a candidate named
/// `${PAYROLL_TOKEN}`), and it must never be filled in: that would send a
/// secret wherever the data goes. So a request is rendered with every `$` of
/// the data and of the mapping's literal text doubled (`StoredText.escape`),
/// and only the placeholders the template itself wrote keep a single `$`.
/// `VariableSource.fill` undoes it: `$$` is one `$`, `${NAME}` is the variable.
public enum StoredText {
    /// `text` with every `$` doubled (returned as it is when it has none).
    public static func escape(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 4)
        for scalar in text.unicodeScalars {
            if scalar == "$" { out.unicodeScalars.append("$") }
            out.unicodeScalars.append(scalar)
        }
        return out
    }

    /// Every string and object key of `value` escaped.
    public static func escape(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(escape(text))
        case .array(let items): return .array(items.map(escape))
        case .object(let object):
            return .object(JSONObject(object.members.map { .init(key: escape($0.key), value: escape($0.value)) }))
        default: return value
        }
    }

    /// `text` with the escape undone and placeholders kept as written (what an
    /// operator reads of a stored request: `$$` shown as `$`).
    public static func unescape(_ text: String) -> String {
        var missing: [String] = []
        return VariableSource(environment: [:]).fill(text, mask: false, keepingPlaceholders: true, missing: &missing)
    }
}

extension VariableSource {
    /// A stored request string filled in for sending (see `StoredText`): `$$`
    /// is one `$`, `${NAME}` and `${NAME:-default}` take the variable's value
    /// (a default is mapping text: its own placeholders are filled too), a
    /// lone `$` stays. Names that are unset and have no default are appended to
    /// `missing` and stay as `${NAME}`. With `mask`, credential-like names show
    /// as `********` (what `map` prints); `keepingPlaceholders` leaves every
    /// placeholder as written and only undoes the escape.
    ///
    /// Written by hand: the stored text is rendered data, not a template, and
    /// must not be parsed as one (a `{{` in a candidate's name is text).
    public func fill(_ stored: String, mask: Bool, keepingPlaceholders: Bool = false, missing: inout [String]) -> String {
        guard stored.utf8.contains(UInt8(ascii: "$")) else { return stored }
        let scalars = Array(stored.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let scalar = scalars[i]
            guard scalar == "$", i + 1 < scalars.count else {
                out.append(scalar)
                i += 1
                continue
            }
            if scalars[i + 1] == "$" {
                out.append("$")
                i += 2
                continue
            }
            guard scalars[i + 1] == "{", let close = Placeholder.closingBrace(scalars, from: i + 2) else {
                out.append(scalar)
                i += 1
                continue
            }
            let inner = String(String.UnicodeScalarView(scalars[(i + 2)..<close]))
            i = close + 1
            if keepingPlaceholders {
                out.append(contentsOf: "${\(inner)}".unicodeScalars)
                continue
            }
            let (name, fallback) = Placeholder.split(inner)
            if let value = value(name) {
                out.append(contentsOf: (mask && VariableSource.isSecret(name) ? "********" : value).unicodeScalars)
            } else if let fallback {
                out.append(contentsOf: substitute(fallback, mask: mask).unicodeScalars)
            } else {
                if !missing.contains(name) { missing.append(name) }
                out.append(contentsOf: "${\(name)}".unicodeScalars)
            }
        }
        return String(out)
    }

    /// A credential as the mapping wrote it (`auth`, an OAuth2 grant: mapping
    /// text, never rendered data) with its `${VARIABLES}` filled; names still
    /// unset are appended to `missing`.
    public func credential(_ text: String, missing: inout [String]) -> String {
        let resolved = substitute(text, mask: false)
        if let template = try? Template.parse(resolved) {
            for variable in template.variables where !missing.contains(variable.name) { missing.append(variable.name) }
        }
        return resolved
    }

    /// Every string (and object key) of a stored request filled in (see `fill(_:mask:missing:)`).
    public func fill(_ value: JSONValue, mask: Bool, missing: inout [String]) -> JSONValue {
        switch value {
        case .string(let text): return .string(fill(text, mask: mask, missing: &missing))
        case .array(let items):
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(fill(item, mask: mask, missing: &missing)) }
            return .array(out)
        case .object(let object):
            var out = JSONObject()
            for member in object.members { out[fill(member.key, mask: mask, missing: &missing)] = fill(member.value, mask: mask, missing: &missing) }
            return .object(out)
        default: return value
        }
    }

}

/// The one reading of `${NAME}` / `${NAME:-default}` text, for the template
/// parser and for filling stored requests.
enum Placeholder {
    /// `NAME:-default` → the name and the default (text after the first `:-`).
    static func split(_ inner: String) -> (name: String, fallback: String?) {
        guard let range = inner.range(of: ":-") else { return (inner, nil) }
        return (String(inner[..<range.lowerBound]), String(inner[range.upperBound...]))
    }

    /// The `}` that closes a placeholder opened just before `start` (defaults may nest).
    static func closingBrace(_ scalars: [Unicode.Scalar], from start: Int) -> Int? {
        var depth = 1
        var k = start
        while k < scalars.count {
            if scalars[k] == "$", k + 1 < scalars.count, scalars[k + 1] == "{" {
                depth += 1
                k += 1
            } else if scalars[k] == "}" {
                depth -= 1
                if depth == 0 { return k }
            }
            k += 1
        }
        return nil
    }
}
