import JSON

/// The parts of an event's `data` that a mapping (or a whole set) can read.
///
/// Every path of every expression is known when a mapping compiles, so an
/// event need not be parsed into a whole tree: the field scanner validates
/// the body exactly as the parser would and builds only these parts (a
/// candidate's few fields instead of the job ad, its answers and locations).
/// The rest of `data` is absent from the scope, which no expression of the
/// mapping can tell: a path stops at its first index, wildcard or computed
/// segment, and the whole value there is built.
public struct DataPaths: Sendable, Hashable {
    /// Every key path into `data` that is read, none a prefix of another.
    public private(set) var paths: Set<[String]>
    /// Some expression reads `data` whole (`data | json`): parse everything.
    public private(set) var readsEverything: Bool

    /// What a mapping without expressions reads: nothing.
    public static let none = DataPaths(paths: [], readsEverything: false)
    /// Safe for anything: the whole of `data`.
    public static let everything = DataPaths(paths: [], readsEverything: true)

    init(paths: Set<[String]>, readsEverything: Bool) {
        self.paths = paths
        self.readsEverything = readsEverything
    }

    /// Exactly these key paths into `data` (e.g. what a caller reads besides the mappings).
    public init(keyPaths: [[String]]) {
        self = .none
        for keys in keyPaths where !keys.isEmpty { insert(keys) }
        if keyPaths.contains(where: \.isEmpty) { self = .everything }
    }

    /// Names the scope always provides itself, never from `data` (`EvaluationScope`).
    static let scopeNames: Set<String> = ["event", "companies", "now"]

    /// The `data` key paths of expression paths (as the compiler collects them).
    init(expressionPaths: some Sequence<Expression.Path>) {
        self = .none
        for path in expressionPaths {
            if DataPaths.scopeNames.contains(path.root) { continue }
            // `data.x` reads `x`; any other root is a key of `data` unless the stage
            // passes it (`response`, `period`): reading it from `data` is harmless.
            var keys: [String] = path.root == "data" ? [] : [path.root]
            for segment in path.segments {
                guard case .field(let name) = segment else { break }
                keys.append(name)
            }
            if keys.isEmpty {
                self = .everything
                return
            }
            insert(keys)
        }
    }

    /// Adds a path, keeping only the shortest of nested ones.
    mutating func insert(_ keys: [String]) {
        if paths.contains(where: { keys.starts(with: $0) }) { return }
        paths = paths.filter { !$0.starts(with: keys) }
        paths.insert(keys)
    }

    /// What either reads (a router parses once for all its mappings).
    public func union(_ other: DataPaths) -> DataPaths {
        if readsEverything || other.readsEverything { return .everything }
        var merged = self
        for keys in other.paths { merged.insert(keys) }
        return merged
    }
}

/// An envelope read for mappings: type, action, and the parts of `data` they need.
public struct EnvelopeForMappings: Sendable {
    /// The envelope's `event_type`.
    public var type: String
    /// The envelope's `action`.
    public var action: String
    /// `data` with what the mappings read (all of it for `DataPaths.everything`).
    public var data: JSONValue
}

/// Reads webhook bodies for a fixed `DataPaths`; build one per mapping set
/// (it compiles the field query once) and share it.
public struct EnvelopeReader: Sendable {
    let paths: DataPaths
    let query: JSONFieldQuery
    let tree: PrunedTree

    /// The query is built here, once. Besides each read path, the scan reports
    /// the kind of every object on the way: present in the pruned `data` exactly
    /// when present in the event (`job` with no `title` is not the same as no
    /// `job`: a wildcard after it gives `[]`, not null).
    public init(_ paths: DataPaths) {
        self.paths = paths
        let dataPaths = paths.paths.sorted { $0.lexicographicallyPrecedes($1) }
        var prefixSet = Set<[String]>()
        for keys in dataPaths where keys.count > 1 {
            for length in 1..<keys.count { prefixSet.insert(Array(keys.prefix(length))) }
        }
        let prefixes = prefixSet.sorted { ($0.count, $0.joined(separator: ".")) < ($1.count, $1.joined(separator: ".")) }
        self.query = JSONFieldQuery(
            [["event_type"], ["action"]] + dataPaths.map { ["data"] + $0 }, kindsOf: [["data"]] + prefixes.map { ["data"] + $0 })
        self.tree = PrunedTree(paths: dataPaths, prefixes: prefixes)
    }

    /// Validates all of `body` as `JSONParser` would (same errors) and builds what
    /// the mappings read; nil when it is not an envelope `{event_type, action, data: {…}}`.
    public func read(_ body: [UInt8], options: JSONParseOptions = .payload) throws(JSONError) -> EnvelopeForMappings? {
        if paths.readsEverything {
            let value = try JSONParser.parse(body, options: options)
            guard let type = value["event_type"]?.stringValue, let action = value["action"]?.stringValue, let data = value["data"],
                data.objectValue != nil
            else { return nil }
            return EnvelopeForMappings(type: type, action: action, data: data)
        }
        let scan = try JSONFieldScanner(query).scan(body, options: options)
        guard let type = scan.values[0]?.stringValue, let action = scan.values[1]?.stringValue, scan.kinds[0] == .object else { return nil }
        return EnvelopeForMappings(type: type, action: action, data: .object(tree.build(values: scan.values, kinds: scan.kinds)))
    }
}

/// The shape of the pruned `data`, made once per reader: each node is a key,
/// with the scan slot of its value (a read path) or of its kind (an object on
/// the way). Built in one pass per event, without copying objects.
struct PrunedTree: Sendable {
    struct Node: Sendable {
        var key: String
        /// Index into the scan's values (offset past `event_type` and `action`).
        var value: Int?
        /// Index into the scan's kinds (offset past `data` itself).
        var kind: Int?
        var children: [Node] = []
    }

    var roots: [Node] = []

    init(paths: [[String]], prefixes: [[String]]) {
        for (index, keys) in prefixes.enumerated() { place(keys[...], in: &roots) { $0.kind = index + 1 } }
        for (index, keys) in paths.enumerated() { place(keys[...], in: &roots) { $0.value = index + 2 } }
    }

    private func place(_ keys: ArraySlice<String>, in nodes: inout [Node], _ mark: (inout Node) -> Void) {
        guard let key = keys.first else { return }
        let position: Int
        if let found = nodes.firstIndex(where: { $0.key == key }) {
            position = found
        } else {
            nodes.append(Node(key: key))
            position = nodes.count - 1
        }
        if keys.count == 1 {
            mark(&nodes[position])
        } else {
            place(keys.dropFirst(), in: &nodes[position].children, mark)
        }
    }

    func build(values: [JSONValue?], kinds: [JSONKind?]) -> JSONObject {
        func value(of node: Node) -> JSONValue? {
            if let slot = node.value { return values[slot] }
            guard let slot = node.kind, let kind = kinds[slot] else { return nil }
            // A non-object on the way answers every field with nothing, as null does.
            guard kind == .object else { return .null }
            return .object(JSONObject(node.children.compactMap { child in value(of: child).map { JSONObject.Member(key: child.key, value: $0) } }))
        }
        return JSONObject(roots.compactMap { root in value(of: root).map { JSONObject.Member(key: root.key, value: $0) } })
    }
}
