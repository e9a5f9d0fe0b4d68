/// An RFC 6901 JSON pointer, e.g. `/data/job/departments/0/name`.
///
/// Errors and source maps name places in a document with pointers because they
/// are unambiguous for any key (a key may contain `.` or `/`).
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible, Comparable {
    public private(set) var tokens: [String]

    /// The whole document (`""`); errors at the top level carry it.
    public static let root = JSONPointer(tokens: [])

    /// Tokens as plain keys and indices: no `~0`/`~1` escaping here, `description` adds it.
    public init(tokens: [String]) {
        self.tokens = tokens
    }

    /// Parses `""`, `"/a/b"`, `"/a~1b/~0c"`; `nil` if it does not start with `/`.
    public init?(_ text: String) {
        if text.isEmpty {
            self.tokens = []
            return
        }
        guard text.hasPrefix("/") else { return nil }
        self.tokens = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingTildeEscapes()
        }
    }

    /// One level down by an object key, kept raw (escaped only when printed).
    public func appending(_ key: String) -> JSONPointer {
        JSONPointer(tokens: tokens + [key])
    }

    /// One level down by an array index, stored as its decimal token.
    public func appending(_ index: Int) -> JSONPointer {
        JSONPointer(tokens: tokens + [String(index)])
    }

    public var description: String {
        var out = ""
        for token in tokens {
            out.append("/")
            JSONPointer.appendEscaped(token, to: &out)
        }
        return out
    }

    /// Token by token, so a parent sorts before its children; tokens compare as
    /// strings, so `/10` sorts before `/9`.
    public static func < (lhs: JSONPointer, rhs: JSONPointer) -> Bool {
        lhs.tokens.lexicographicallyPrecedes(rhs.tokens)
    }

    static func appendEscaped(_ token: String, to out: inout String) {
        if !token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) {
            out.append(token)
            return
        }
        for ch in token {
            switch ch {
            case "~": out.append("~0")
            case "/": out.append("~1")
            default: out.append(ch)
            }
        }
    }

    /// An array index token: `0` or digits without a leading zero.
    static func arrayIndex(_ token: String) -> Int? {
        guard let first = token.utf8.first else { return nil }
        if token.utf8.count > 1, first == UInt8(ascii: "0") { return nil }
        guard token.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(token)
    }
}

extension Substring {
    fileprivate func replacingTildeEscapes() -> String {
        guard contains("~") else { return String(self) }
        var out = ""
        var iterator = makeIterator()
        while let ch = iterator.next() {
            if ch == "~" {
                switch iterator.next() {
                case "0": out.append("~")
                case "1": out.append("/")
                case let other?:
                    out.append("~")
                    out.append(other)
                case nil: out.append("~")
                }
            } else {
                out.append(ch)
            }
        }
        return out
    }
}
