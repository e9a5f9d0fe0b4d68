/// The state of a finished payroll file on its way to a remote folder.
///
/// The file is written locally first (`pending`), uploaded under a temporary
/// name and recorded `staged` before it is renamed into place, then
/// `uploaded`. Because the rename is atomic and only ever follows a recorded
/// `staged`, a crash at any instant is resolved without guessing: in
/// `pending` nothing of ours is under the final name; in `staged` a missing
/// temporary file means the rename already happened (the importer may even
/// have taken the file away meanwhile), so the upload is never sent twice.
public enum FileUploadState: String, Sendable, Hashable {
    /// Written locally, not yet (completely) uploaded.
    case pending
    /// Uploaded under the temporary name; the rename may or may not have happened.
    case staged
    /// Under its final name (and its `.done` marker beside it, when asked for).
    case uploaded
}

/// One period's file and where it is in its upload.
public struct FileUpload: Sendable, Hashable {
    /// The CSV mapping and period the file belongs to.
    public var mapping: String
    /// The period's start (Unix seconds): with `mapping`, the key of the record.
    public var periodStart: Int64
    /// The local copy (in the data directory, 0600); `nil` once removed after the upload.
    public var localPath: String?
    /// `sftp://host[:port]/path/name`; never holds credentials.
    public var remoteURL: String
    /// Size and SHA-256 (hex) of the file as written: what was uploaded.
    public var size: Int64
    /// Lower-case hex; the local copy must still match it before it is sent.
    public var sha256: String
    /// Where the upload stands (see `FileUploadState`).
    public var state: FileUploadState
    /// Failed attempts so far (a success does not count).
    public var attempts: Int
    /// Unix seconds; the next attempt is not made before it.
    public var nextAttemptAt: Int64
    /// The last failure, worded without credentials or file contents.
    public var lastError: String?
    /// Unix seconds, once `uploaded`.
    public var uploadedAt: Int64?

    /// A new upload, due at once.
    public init(mapping: String, periodStart: Int64, localPath: String, remoteURL: String, size: Int64, sha256: String, now: Int64) {
        self.mapping = mapping
        self.periodStart = periodStart
        self.localPath = localPath
        self.remoteURL = remoteURL
        self.size = size
        self.sha256 = sha256
        self.state = .pending
        self.attempts = 0
        self.nextAttemptAt = now
        self.lastError = nil
        self.uploadedAt = nil
    }

    /// The upload after a failed attempt at `now`: 30 s, doubling per failure,
    /// at most 30 minutes, retried for as long as it takes (a payroll file is
    /// never given up on; its alerts say why it waits).
    public func failed(_ reason: String, now: Int64) -> FileUpload {
        var next = self
        next.attempts += 1
        next.lastError = reason
        next.nextAttemptAt = now + FileUpload.retryDelay(afterFailures: next.attempts)
        return next
    }

    /// Whether the uploader has work on it at `now`: an unfinished upload whose
    /// wait is over, or an uploaded one whose local copy is still to be removed.
    /// (`CSVUploadStore.csvUploadsToProcess` selects the same rows in SQL.)
    public func isDue(now: Int64) -> Bool {
        state == .uploaded ? localPath != nil : nextAttemptAt <= now
    }

    /// Seconds before the attempt after `failures` failed ones.
    public static func retryDelay(afterFailures failures: Int) -> Int64 {
        let exponent = min(max(failures - 1, 0), 6)
        return min(30 << Int64(exponent), 1800)
    }

    /// The temporary name beside the final one: hidden, so an importer that
    /// polls for `*.csv` never sees a partial file.
    public static func temporaryPath(for remotePath: String) -> String {
        let slash = remotePath.lastIndex(of: "/").map { remotePath.index(after: $0) } ?? remotePath.startIndex
        return String(remotePath[..<slash]) + "." + String(remotePath[slash...]) + ".part"
    }
}
