/// A set of object-key paths to pull out of a document, e.g. the envelope's
/// `event_type`, `action` and the company and candidate ids.
public struct JSONFieldQuery: Sendable {
    struct Node: Sendable {
        var children: [(key: [UInt8], node: Int)] = []
        var targets: [Int] = []
        var kindTargets: [Int] = []
    }

    /// Key paths whose values are materialised, in the order of `JSONScanResult.values`.
    /// Paths step through object keys only, never into an array.
    public let paths: [[String]]
    /// Paths whose kind alone is wanted (e.g. "`data` is an object"): the scan
    /// validates them like any skipped part but builds nothing.
    public let kindPaths: [[String]]
    var nodes: [Node] = [Node()]

    /// Builds the key trie once; keep a query in a `static let` and reuse it (as the
    /// envelope reader does) rather than building one per scan.
    public init(_ paths: [[String]], kindsOf kindPaths: [[String]] = []) {
        self.paths = paths
        self.kindPaths = kindPaths
        for (index, path) in paths.enumerated() {
            let node = insert(path)
            nodes[node].targets.append(index)
        }
        for (index, path) in kindPaths.enumerated() {
            let node = insert(path)
            nodes[node].kindTargets.append(index)
        }
    }

    private mutating func insert(_ path: [String]) -> Int {
        var node = 0
        for key in path {
            let utf8 = Array(key.utf8)
            if let existing = nodes[node].children.first(where: { $0.key == utf8 }) {
                node = existing.node
            } else {
                nodes.append(Node())
                nodes[node].children.append((utf8, nodes.count - 1))
                node = nodes.count - 1
            }
        }
        return node
    }
}

/// The kind of a JSON value, without the value.
public enum JSONKind: Sendable, Hashable {
    case null, bool, number, string, array, object
}

extension JSONValue {
    /// The value's `JSONKind`, as a scan's `kindPaths` would report it for the same text.
    public var kind: JSONKind {
        switch self {
        case .null: return .null
        case .bool: return .bool
        case .number: return .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        }
    }
}

/// What a scan found: one entry per query path (`nil` when absent).
public struct JSONScanResult: Sendable {
    /// `nil` also when a path runs through something that is not an object.
    public var values: [JSONValue?]
    /// One entry per `JSONFieldQuery.kindPaths` path (`nil` when absent).
    public var kinds: [JSONKind?]
    /// As `JSONDocument.usedTrailingCommas`: the input relied on the trailing-comma leniency.
    public var usedTrailingCommas: Bool
}

/// Where a scan puts what it finds.
struct JSONScanSlots {
    var values: [JSONValue?]
    var kinds: [JSONKind?]
}

/// The receiver's fast path: validates a whole document exactly as
/// `JSONParser` would (same grammar, limits, UTF-8 and duplicate-key rules)
/// but materialises only the queried fields, so the hot path allocates a few
/// strings instead of a tree.
public struct JSONFieldScanner: Sendable {
    /// Fixed for the scanner's life; its trie was built by `JSONFieldQuery.init`, not per scan.
    public let query: JSONFieldQuery

    /// Cheap; a scanner holds no state between scans, so one can be shared by every request.
    public init(_ query: JSONFieldQuery) {
        self.query = query
    }

    /// Validates the whole of `bytes` in one pass and throws a `JSONError` for any
    /// input `JSONParser` refuses; `options.recordPositions` is ignored.
    public func scan(_ bytes: [UInt8], options: JSONParseOptions = .payload) throws(JSONError) -> JSONScanResult {
        let result: Result<JSONScanResult, JSONError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONError) in try scan(buffer, options: options) }
        }
        return try result.get()
    }

    /// For a body still in a borrowed buffer: no copy is made, and the result keeps
    /// no reference to the buffer.
    public func scan(_ bytes: UnsafeRawBufferPointer, options: JSONParseOptions = .payload) throws(JSONError) -> JSONScanResult {
        try scan(bytes.bindMemory(to: UInt8.self), options: options)
    }

    func scan(_ bytes: UnsafeBufferPointer<UInt8>, options: JSONParseOptions) throws(JSONError) -> JSONScanResult {
        var options = options
        options.recordPositions = false
        var core = JSONParserCore(bytes: bytes, options: options)
        var slots = JSONScanSlots(
            values: [JSONValue?](repeating: nil, count: query.paths.count),
            kinds: [JSONKind?](repeating: nil, count: query.kindPaths.count))
        try core.checkStart()
        try core.scanValue(node: 0, depth: 0, query: query, into: &slots)
        try core.checkEnd()
        return JSONScanResult(values: slots.values, kinds: slots.kinds, usedTrailingCommas: core.usedTrailingCommas)
    }
}

extension JSONParserCore {
    /// Validates the value at `i`; materialises it where `node` is a query target.
    /// `node == nil` means nothing below here is wanted.
    mutating func scanValue(node: Int?, depth: Int, query: JSONFieldQuery, into slots: inout JSONScanSlots) throws(JSONError) {
        if let node, !query.nodes[node].kindTargets.isEmpty, i < bytes.count, let kind = JSONParserCore.kind(startingWith: bytes[i]) {
            for target in query.nodes[node].kindTargets { slots.kinds[target] = kind }
        }
        if let node, !query.nodes[node].targets.isEmpty {
            let value = try parseValue(depth: depth)
            fill(node: node, with: value, query: query, into: &slots)
            return
        }
        guard i < bytes.count else { throw unexpected(expected: "a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): try scanObject(node: node, depth: depth, query: query, into: &slots)
        case UInt8(ascii: "["):
            let inner = try enterContainer(depth: depth)
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return
            }
            path.append(.index(0))
            var index = 0
            while true {
                path[path.count - 1] = .index(index)
                try scanValue(node: nil, depth: inner, query: query, into: &slots)
                index += 1
                if try afterElement(closing: UInt8(ascii: "]"), expected: "',' or ']'") { break }
            }
            path.removeLast()
        case UInt8(ascii: "\""): _ = try scanStringLiteral()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw unexpected(expected: "a value")
        }
    }

    /// The kind a value has, told by its first byte (`nil`: not a value; the
    /// scan reports that error itself).
    static func kind(startingWith byte: UInt8) -> JSONKind? {
        switch byte {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: return nil
        }
    }

    /// Fills every target at or below `node` from an already built value.
    func fill(node: Int, with value: JSONValue, query: JSONFieldQuery, into slots: inout JSONScanSlots) {
        for target in query.nodes[node].targets where slots.values[target] == nil {
            slots.values[target] = value
        }
        for target in query.nodes[node].kindTargets {
            slots.kinds[target] = value.kind
        }
        for child in query.nodes[node].children {
            if let childValue = value[String(decoding: child.key, as: UTF8.self)] {
                fill(node: child.node, with: childValue, query: query, into: &slots)
            }
        }
    }

    mutating func scanObject(node: Int?, depth: Int, query: JSONFieldQuery, into slots: inout JSONScanSlots) throws(JSONError) {
        let inner = try enterContainer(depth: depth)
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return
        }
        path.append(.index(0))
        var keys = RawKeySet(base: scannedKeys.count)
        defer { scannedKeys.removeSubrange(keys.base...) }
        while true {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw unexpected(expected: "a string key") }
            let keyOffset = i
            let literal = try scanStringLiteral()
            path[path.count - 1] = .key(start: literal.start, end: literal.end, escaped: literal.escaped)
            if keys.insert(literal, in: &self) == false {
                throw error(.duplicateKey(decodeString(start: literal.start, end: literal.end, escaped: literal.escaped)), at: keyOffset)
            }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw unexpected(expected: "':'") }
            i += 1
            skipWhitespace()
            let child = node.flatMap { childNode(of: $0, literal: literal, query: query) }
            try scanValue(node: child, depth: inner, query: query, into: &slots)
            if try afterElement(closing: UInt8(ascii: "}"), expected: "',' or '}'") { break }
        }
        path.removeLast()
    }

    func childNode(of node: Int, literal: (start: Int, end: Int, escaped: Bool), query: JSONFieldQuery) -> Int? {
        let children = query.nodes[node].children
        if children.isEmpty { return nil }
        if literal.escaped {
            let key = Array(decodeString(start: literal.start, end: literal.end, escaped: true).utf8)
            return children.first { $0.key == key }?.node
        }
        let raw = UnsafeBufferPointer(rebasing: bytes[literal.start..<literal.end])
        return children.first { $0.key.elementsEqual(raw) }?.node
    }
}

/// The keys seen in one object while skipping it, compared without decoding
/// unless a key has escapes; hashed past 16 keys. The ranges live on the
/// parser's one `scannedKeys` stack (this object's from `base` on), so an
/// object costs no allocation of its own.
struct RawKeySet {
    let base: Int
    var decoded: Set<String>?

    init(base: Int) {
        self.base = base
    }

    mutating func insert(_ key: (start: Int, end: Int, escaped: Bool), in core: inout JSONParserCore) -> Bool {
        if decoded == nil, core.scannedKeys.count - base < 16 {
            for index in base..<core.scannedKeys.count where RawKeySet.equal(key, core.scannedKeys[index], in: core) { return false }
            core.scannedKeys.append(key)
            return true
        }
        if decoded == nil {
            decoded = Set(core.scannedKeys[base...].map { core.decodeString(start: $0.start, end: $0.end, escaped: $0.escaped) })
        }
        return decoded?.insert(core.decodeString(start: key.start, end: key.end, escaped: key.escaped)).inserted ?? true
    }

    static func equal(_ a: (start: Int, end: Int, escaped: Bool), _ b: (start: Int, end: Int, escaped: Bool), in core: JSONParserCore) -> Bool {
        if !a.escaped && !b.escaped {
            guard a.end - a.start == b.end - b.start else { return false }
            return UnsafeBufferPointer(rebasing: core.bytes[a.start..<a.end])
                .elementsEqual(UnsafeBufferPointer(rebasing: core.bytes[b.start..<b.end]))
        }
        return core.decodeString(start: a.start, end: a.end, escaped: a.escaped)
            == core.decodeString(start: b.start, end: b.end, escaped: b.escaped)
    }
}
