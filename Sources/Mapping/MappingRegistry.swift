import Synchronization

/// The mappings in force; replaced whole on reload (SIGHUP), never edited.
public final class MappingRegistry: Sendable {
    private let state: Mutex<MappingSet>

    public init(_ mappings: MappingSet) {
        state = Mutex(mappings)
    }

    public var current: MappingSet { state.withLock { $0 } }

    public func replace(with mappings: MappingSet) {
        state.withLock { $0 = mappings }
    }
}
