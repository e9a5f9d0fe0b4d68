import Clocks

/// One archived file: what the compliance record says about it. The same
/// fields are written to the store and to a JSON sidecar beside the file, so
/// the archive stays self-describing if the store is lost.
public struct ArchivedFile: Sendable, Hashable {
    /// The store's record id; `nil` until `ArchiveStore.recordArchivedFile` returns the record.
    public var id: Int64?
    /// With `candidateID` and `sha256`: identical content of a candidate is recorded once.
    public var companyID: String
    /// The candidate the file belongs to (the subject key erasure and retention look up).
    public var candidateID: String
    /// The archive job that downloaded it.
    public var jobID: Int64
    /// The job's mapping (its `retention_days` may shorten `retainUntil`).
    public var mapping: String
    /// `cv`, `cover_letter`, `other-2`, `answer-1`, …
    public var kind: String
    /// Cleaned name from the URL (metadata only; the stored name is derived).
    public var originalName: String?
    /// As the server declared it.
    public var contentType: String?
    /// What the first bytes say.
    public var sniffedType: String?
    /// Set when declared and sniffed types disagree (flagged, never refused).
    public var typeMismatch: String?
    /// Bytes as stored.
    public var size: Int64
    /// Lowercase hex.
    public var sha256: String
    /// Relative to the archive directory.
    public var path: String
    /// When the download finished; retention counts from here.
    public var downloadedAt: Timestamp
    /// The signed URL's own expiry, when the URL states one.
    public var urlExpiry: Timestamp?
    /// The source URL without its query (the signature).
    public var sourceURL: String
    /// When retention deletes it.
    public var retainUntil: Timestamp

    /// A record to write (`id` nil) or one read back from the store.
    public init(
        id: Int64? = nil, companyID: String, candidateID: String, jobID: Int64, mapping: String, kind: String, originalName: String?,
        contentType: String?, sniffedType: String?, typeMismatch: String?, size: Int64, sha256: String, path: String,
        downloadedAt: Timestamp, urlExpiry: Timestamp?, sourceURL: String, retainUntil: Timestamp
    ) {
        self.id = id
        self.companyID = companyID
        self.candidateID = candidateID
        self.jobID = jobID
        self.mapping = mapping
        self.kind = kind
        self.originalName = originalName
        self.contentType = contentType
        self.sniffedType = sniffedType
        self.typeMismatch = typeMismatch
        self.size = size
        self.sha256 = sha256
        self.path = path
        self.downloadedAt = downloadedAt
        self.urlExpiry = urlExpiry
        self.sourceURL = sourceURL
        self.retainUntil = retainUntil
    }
}

/// The archive's metadata records, as the archive executor and the archive
/// commands see them.
public protocol ArchiveStore: Sendable {
    /// The record of identical content already archived for this candidate, if any.
    func archivedFile(companyID: String, candidateID: String, sha256: String) async throws -> ArchivedFile?
    /// Records a file; when the same content of the candidate is already
    /// recorded (a re-run after a crash), returns that record instead.
    func recordArchivedFile(_ file: ArchivedFile) async throws -> ArchivedFile
    /// Records whose retention ended at `now`, in id order after `afterID` (a page at a time).
    func archivedFiles(retainedBefore now: Timestamp, afterID: Int64, limit: Int) throws -> [ArchivedFile]
    /// Deletes a record once its file is gone.
    func deleteArchivedFile(id: Int64) throws
}

/// How long archived files are kept, per data class (the kind without its
/// index: `other-2` is class `other`), with an optional shorter override
/// per mapping.
public struct ArchiveRetention: Sendable, Hashable {
    /// Days for a data class without an entry in `daysByClass`.
    public var defaultDays: Int
    /// Days per data class (`cv`, `cover_letter`, `other`, …).
    public var daysByClass: [String: Int]

    /// Defaults: every class kept 365 days.
    public init(defaultDays: Int = 365, daysByClass: [String: Int] = [:]) {
        self.defaultDays = defaultDays
        self.daysByClass = daysByClass
    }

    /// The kind without a trailing `-<digits>` index: `other-2` → `other`, `cv` → `cv`.
    public static func dataClass(ofKind kind: String) -> String {
        if let dash = kind.lastIndex(of: "-"), kind[kind.index(after: dash)...].allSatisfy(\.isNumber), dash != kind.startIndex {
            return String(kind[..<dash])
        }
        return kind
    }

    /// A mapping may shorten retention, never lengthen it beyond its class.
    public func days(kind: String, mappingOverride: Int?) -> Int {
        let classDays = daysByClass[ArchiveRetention.dataClass(ofKind: kind)] ?? defaultDays
        guard let mappingOverride else { return classDays }
        return min(classDays, mappingOverride)
    }
}
