import Synchronization

/// The mappings in force; replaced whole on reload (SIGHUP), never edited.
public final class MappingRegistry: Sendable {
    private let state: Mutex<MappingSet>

    /// Starts with `mappings` in force; later sets arrive through `replace(with:)`.
    public init(_ mappings: MappingSet) {
        state = Mutex(mappings)
    }

    /// The set in force now; read it once per event, so one routing sees one set
    /// even when a reload lands midway.
    public var current: MappingSet { state.withLock { $0 } }

    /// Swaps in a whole new set at once, from any thread; holders of the old set
    /// keep using it.
    public func replace(with mappings: MappingSet) {
        state.withLock { $0 = mappings }
    }
}
