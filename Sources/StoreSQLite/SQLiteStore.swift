import Clocks
import Crypto
import Domain
import Foundation
import GRDB
import GRDBSQLite
import JSON
import Logging
import Synchronization

/// Options of the embedded store.
public struct SQLiteStoreOptions: Sendable {
    /// Webhooks waiting for the writer beyond this are refused with 503.
    public var ingestQueueCapacity: Int = 4096
    /// Upper bound of one group commit.
    public var maxBatch: Int = 512
    /// Caps the database size (SQLite `max_page_count`); `nil` = unlimited.
    /// Operators use it to keep the store from filling a shared volume; tests
    /// use it to produce a real "database or disk is full".
    public var maxPageCount: Int?
    /// Jobs of one mapping running at once: a slow or hanging endpoint can
    /// take this many of the runner's slots, never all of them.
    public var maxRunningPerMapping: Int = 8

    public init() {}
}

/// Failures of the store itself, as opposed to SQLite's own errors.
public enum StoreError: Error, CustomStringConvertible {
    case open(path: String, underlying: String)
    case notFound(String)

    public var description: String {
        switch self {
        case .open(let path, let underlying): return "cannot open store \(path): \(underlying)"
        case .notFound(let what): return "\(what) not found"
        }
    }
}

/// The embedded store: SQLite through GRDB, WAL, `synchronous=FULL`,
/// `secure_delete=ON`, checkpoints off the commit path.
///
/// One daemon owns a store (it holds `DaemonLock`, taken at start-up in
/// BridgeApp); short CLI processes may open it beside the daemon (WAL allows
/// concurrent readers, writers wait on the busy timeout).
public final class SQLiteStore: Sendable, IngestPressure {
    /// The database file (`bridge.sqlite` in the data directory).
    public let path: String
    let options: SQLiteStoreOptions
    let logger: Logger
    /// A second connection only for checkpoints: a PASSIVE checkpoint copies
    /// WAL pages into the database file while the writer keeps committing.
    let checkpointQueue: DatabaseQueue
    /// Reads (runner wake-ups, the routing queue, gauges, operator queries) on a
    /// connection of their own: in WAL mode they see committed data and never
    /// hold up the writer's commits, as they would on its connection.
    let reader: DatabaseQueue
    /// The single writer: every write of the store goes through it, except
    /// erasure and the closing checkpoint, which use its connection directly (`database`).
    let writer: StoreWriter
    /// Jobs whose claim failed and could not even be set aside (see `claim`).
    let unclaimableJobs = Mutex(Set<Int64>())

    /// The database file of a data directory: `bridge.sqlite` (`-wal` and `-shm` beside it).
    public static func databasePath(inDataDirectory directory: String) -> String {
        (directory as NSString).appendingPathComponent("bridge.sqlite")
    }

    /// Opens (creating and migrating if need be) the database in `directory`,
    /// its files mode 0600, and starts the writer thread, which runs until
    /// `close()`. Throws `StoreError.open` if the writer's connection cannot be
    /// opened or migrated.
    public init(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions(), logger: Logger) throws {
        self.path = SQLiteStore.databasePath(inDataDirectory: directory)
        self.options = options
        self.logger = logger
        let connection = try WriterConnection(path: path, options: options)
        self.checkpointQueue = try DatabaseQueue(path: path, configuration: SQLiteStore.configuration(options: options))
        self.reader = try DatabaseQueue(path: path, configuration: SQLiteStore.configuration(options: options))
        self.writer = StoreWriter(connection: connection, capacity: options.ingestQueueCapacity, maxBatch: options.maxBatch, logger: logger)
        writer.start()
    }

    static func configuration(options: SQLiteStoreOptions) -> Configuration {
        var config = Configuration()
        // WAL is set here rather than through `config.journalMode = .wal`:
        // GRDB's WAL setup lowers `synchronous` to NORMAL afterwards, and NORMAL
        // in WAL mode does not fsync on commit.
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode == "wal" else { throw DatabaseError(message: "could not enable WAL mode") }
            // FULL in WAL mode: every commit fsyncs the WAL before it returns,
            // which is what lets a 2XX mean "on disk".
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Checkpoints run in the background (`checkpoint()`), not inside a commit.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // SQLite's default page cache is 2 MiB: the random-order index pages
            // every webhook touches (body hash, subject) would then be read back
            // from the OS on most inserts once the store holds a few days of events.
            try db.execute(sql: "PRAGMA cache_size = -32768")
            if let pages = options.maxPageCount {
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
        }
        return config
    }

    static func openQueue(path: String, options: SQLiteStoreOptions) throws -> DatabaseQueue {
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration(options: options))
            try Schema.migrator().migrate(queue)
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                chmod(path + suffix, 0o600)
            }
            return queue
        } catch {
            throw StoreError.open(path: path, underlying: "\(error)")
        }
    }

    /// The writer's connection, for what must run outside the writer's
    /// transactions (erasure's VACUUM-free page overwrite, the closing checkpoint).
    var database: DatabaseQueue { writer.connection.database }

    /// Called after a commit that created jobs (the runners' wake-up). Runs on
    /// the writer thread before the commit's callers are answered, so it must
    /// only signal; a second call replaces the first handler.
    public func setJobsCommittedHandler(_ handler: @escaping @Sendable () -> Void) {
        writer.commitHandlers.withLock { $0.jobsCommitted = handler }
    }

    /// Called after a commit that queued events for routing (the router's wake-up);
    /// on the writer thread, like `setJobsCommittedHandler`.
    public func setEventsQueuedHandler(_ handler: @escaping @Sendable () -> Void) {
        writer.commitHandlers.withLock { $0.eventsQueued = handler }
    }

    /// Calls the commit handlers as a commit with these effects would (for tests:
    /// the writer itself calls `StoreWriter.announce` after each commit).
    func announceCommit(createdJobs: Bool, queuedEvents: Bool) {
        writer.announce(CommitEffects(createdJobs: createdJobs, queuedEvents: queuedEvents))
    }

    /// True while webhooks queue up for commits: background work steps aside.
    public var isHigh: Bool { writer.isUnderIngestPressure }

    /// Finishes the commits in flight, refuses new ones, checkpoints.
    public func close() {
        writer.stop()
        _ = try? database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// A store dropped without `close()` (a test, a failed start) still ends
    /// its writer thread, after committing what was queued.
    deinit {
        writer.stop()
    }

    /// Moves WAL content into the database file on the checkpoint connection
    /// (PASSIVE: never waits for or blocks the writer). Async so the copy
    /// runs on the connection's own queue, never on a thread that serves
    /// requests. With `flush`, the database file is fsync'd afterwards (see
    /// `maintainWAL`).
    @discardableResult
    public func checkpoint(flush: Bool = false) async throws -> WALProgress {
        try await checkpointQueue.writeWithoutTransaction { db in
            let progress = try WALProgress.checkpoint(db)
            if flush && progress.backfilled > 0 { try SQLiteStore.syncDatabaseFile(db) }
            return progress
        }
    }

    /// Flushes the database file through the connection's own file handle.
    /// Never through a descriptor of our own: closing any descriptor of the
    /// file drops every POSIX lock the process holds on it, SQLite's included
    /// (seen: another process then took the daemon for gone and deleted the
    /// live WAL).
    static func syncDatabaseFile(_ db: Database) throws {
        var file: UnsafeMutablePointer<sqlite3_file>?
        let found = withUnsafeMutablePointer(to: &file) { pointer in
            sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_FILE_POINTER, pointer)
        }
        guard found == SQLITE_OK, let file, let sync = file.pointee.pMethods?.pointee.xSync else {
            throw DatabaseError(resultCode: .SQLITE_IOERR, message: "no file handle to flush the database file")
        }
        let code = sync(file, SQLITE_SYNC_NORMAL)
        guard code == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "flushing the database file failed")
        }
    }

    /// Keeps the WAL bounded under steady writes.
    ///
    /// A checkpoint on its own connection never reaches the end of a WAL that
    /// keeps receiving commits, and SQLite only starts a WAL over once all of
    /// it is in the database file: under sustained load the file would grow
    /// without end (measured: 2 GB after 20 s at 5k webhooks/s). So once the
    /// WAL passes `policy.restartAbove` frames, the background connection
    /// copies the bulk and flushes the database file (SQLite itself fsyncs it
    /// only after a checkpoint that reached the end), and the writer copies
    /// the rest between two commits, after which the next commit starts the
    /// WAL over. The writer's part holds commits for its copy and fsync, so it
    /// runs only for a large WAL: at realistic rates the WAL starts over on
    /// its own in a quiet moment, and a flush every second would contend with
    /// the commits' own fsyncs (measured: p99 doubled).
    @discardableResult
    public func maintainWAL(policy: WALPolicy = WALPolicy()) async throws -> WALProgress {
        var progress = try await checkpoint()
        var rounds = 1
        while true {
            switch policy.next(after: progress, backgroundRounds: rounds) {
            case .done:
                return progress
            case .checkpointAgain:
                progress = try await checkpoint(flush: true)
                rounds += 1
            case .finishOnWriter:
                // Flush what the background copied, so the writer's own fsync
                // covers only its last few frames.
                try await checkpoint(flush: true)
                return try await writer.finishCheckpoint()
            }
        }
    }

    static func sha256(_ bytes: [UInt8]) -> Data {
        Data(SHA256.hash(data: bytes))
    }
}
