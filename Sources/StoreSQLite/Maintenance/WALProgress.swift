import GRDB

/// Where a checkpoint left the WAL: how many frames it holds and how many of
/// them are already in the database file.
public struct WALProgress: Sendable, Hashable {
    /// Frames in the WAL (0 outside WAL mode).
    public var frames: Int
    /// Frames already copied into the database file.
    public var backfilled: Int

    /// Counts as given; `checkpoint` turns SQLite's -1 (not in WAL mode) into 0.
    public init(frames: Int, backfilled: Int) {
        self.frames = frames
        self.backfilled = backfilled
    }

    /// Frames not yet in the database file.
    public var remaining: Int { max(0, frames - backfilled) }

    /// Runs a PASSIVE checkpoint on `db` (it never waits for other connections).
    static func checkpoint(_ db: Database) throws -> WALProgress {
        // Columns: busy, frames in the WAL, frames checkpointed (-1, -1 outside WAL mode).
        guard let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)") else {
            return WALProgress(frames: 0, backfilled: 0)
        }
        let frames: Int = row[1]
        let backfilled: Int = row[2]
        return WALProgress(frames: max(0, frames), backfilled: max(0, backfilled))
    }
}

/// When the writer should finish a checkpoint itself (see
/// `SQLiteStore.maintainWAL`). Pure, so the rule is tested without timing.
public struct WALPolicy: Sendable, Hashable {
    /// Below this many frames (4 KiB pages each) the WAL is left to start
    /// over on its own, at the next quiet moment (default: 4 GiB).
    public var restartAbove: Int
    /// The writer copies at most this many frames itself.
    public var writerFrames: Int = 1024
    /// Background passes per maintenance tick before giving up until the next.
    public var maxBackgroundRounds: Int = 6

    /// `maxWALBytes` is turned into frames at 4 KiB a frame (at least one).
    public init(maxWALBytes: Int = 4 << 30) {
        restartAbove = max(1, maxWALBytes / 4096)
    }

    /// What `maintainWAL` does next.
    public enum Step: Sendable, Hashable {
        /// Stop until the next maintenance tick.
        case done
        /// Another background pass (with a flush of the database file).
        case checkpointAgain
        /// Few enough frames left for the writer to copy them between two commits.
        case finishOnWriter
    }

    /// Small WAL: `done`; few frames left: `finishOnWriter`; else another
    /// background pass, up to `maxBackgroundRounds` per tick.
    public func next(after progress: WALProgress, backgroundRounds: Int) -> Step {
        if progress.frames <= restartAbove { return .done }
        if progress.remaining <= writerFrames { return .finishOnWriter }
        return backgroundRounds < maxBackgroundRounds ? .checkpointAgain : .done
    }
}
