import Clocks
import Logging
import Mapping
import ServiceLifecycle
import StoreSQLite
import UnixSignals

/// Reloads the mapping files and the secrets directory on SIGHUP, as one
/// snapshot. A set with errors is refused (the running one stays); jobs held
/// for a variable that the reload provides go back to the queue.
public struct MappingReloader: Service {
    let directory: String
    let connectors: [String]
    let variables: @Sendable () -> VariableSource
    let registry: MappingRegistry
    let store: SQLiteStore
    let clock: any WallClock
    let wake: @Sendable () -> Void
    let logger: Logger

    /// `variables` makes a fresh snapshot (it reads the secrets directory) at each reload;
    /// `connectors` are the packs loaded beside `directory`'s files.
    public init(
        directory: String, connectors: [String] = [], variables: @escaping @Sendable () -> VariableSource, registry: MappingRegistry,
        store: SQLiteStore,
        clock: any WallClock, wake: @escaping @Sendable () -> Void, logger: Logger
    ) {
        self.directory = directory
        self.connectors = connectors
        self.variables = variables
        self.registry = registry
        self.store = store
        self.clock = clock
        self.wake = wake
        self.logger = logger
    }

    /// Reloads at each SIGHUP until the group shuts down.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        // Cancelled on graceful shutdown, which ends the signal sequence.
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                await reload()
            }
        }
    }

    /// Loads the directory and the variables anew; returns whether the new set is in force.
    @discardableResult
    public func reload() async -> Bool {
        let (mappings, errors, _) = MappingLoader.load(directory: directory, connectors: connectors, variables: variables(), strict: false) { line in
            logger.error("mapping reload", metadata: ["diagnostic": "\(line)"])
        }
        guard errors == 0 else {
            logger.error("mapping reload refused: keeping the mappings in force", metadata: ["errors": "\(errors)"])
            return false
        }
        registry.replace(with: mappings)
        let released: Int
        do {
            released = try await store.releaseHeldJobs(mappings: mappings.ready, now: clock.now())
        } catch {
            logger.error("mapping reload: releasing held jobs failed (the next reload or start retries)", metadata: ["error": "\(error)"])
            released = 0
        }
        logger.notice("mappings reloaded", metadata: ["count": "\(mappings.mappings.count)", "released_jobs": "\(released)"])
        if released > 0 { wake() }
        return true
    }
}
