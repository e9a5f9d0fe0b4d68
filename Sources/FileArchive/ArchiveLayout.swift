import Crypto
import DurableFiles
import Foundation
import JSON
import Mapping

#if canImport(Glibc)
import Glibc
import Clocks
import Domain
#endif

/// The archive on disk: `<root>/<company>/<candidate>/<kind>-<sha256 prefix>.<ext>`
/// by default (a mapping may set `directory` and `file_name`) plus a `.json`
/// sidecar per file, directories 0700, files 0600, downloads
/// in progress under `<root>/.partial` (same volume, so placing is a rename).
public struct ArchiveLayout: Sendable {
    /// Every record's `path` is relative to this.
    public let root: String

    /// Touches nothing on disk; `prepare()` creates the folders.
    public init(root: String) {
        self.root = root
    }

    /// Downloads in progress, inside the root so the final rename stays on one volume.
    public var partialDirectory: String { (root as NSString).appendingPathComponent(".partial") }

    /// `relative` must already be validated (`ArchiveNames`); nothing is checked here.
    public func absolute(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    /// Creates the root and `.partial` (0700) and deletes what a previous
    /// process left half-downloaded (one daemon owns the store and the archive).
    /// Returns how many temp files were removed.
    @discardableResult
    public func prepare() throws -> Int {
        try ArchiveLayout.makeDirectory(root)
        try ArchiveLayout.makeDirectory(partialDirectory)
        var removed = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: partialDirectory)) ?? [] {
            if unlink((partialDirectory as NSString).appendingPathComponent(name)) == 0 { removed += 1 }
        }
        return removed
    }

    static func makeDirectory(_ path: String) throws(IOFailure) {
        try DurableFiles.makeDirectory(path, mode: 0o700)
    }

    /// The mapping's file name (default `kind-<16 hex>.<ext>`) under the validated directory segments.
    public static func relativePath(segments: [String], fileName: String) -> String {
        (segments + [fileName]).joined(separator: "/")
    }

    /// Moves a finished temp file to its final name (creating 0700 parents),
    /// then fsyncs the directory so the name survives a crash.
    public func place(temporaryPath: String, relativePath: String) throws(IOFailure) {
        let parts = relativePath.split(separator: "/").map(String.init)
        var directory = root
        for segment in parts.dropLast() {
            directory = (directory as NSString).appendingPathComponent(segment)
            try ArchiveLayout.makeDirectory(directory)
        }
        try DurableFiles.publish(temporaryPath, as: absolute(relativePath))
    }

    /// Writes the sidecar `<file>.json` durably (0600).
    public func writeSidecar(_ file: ArchivedFile) throws(IOFailure) {
        let bytes = Array((JSONWriter.prettyString(ArchiveLayout.sidecar(file)) + "\n").utf8)
        // Staged in `.partial`, which every start empties: a crash never leaves
        // a temporary copy of personal data beside the candidate's files.
        try DurableFiles.write(bytes, to: absolute(file.path) + ".json", mode: 0o600, stagingDirectory: partialDirectory)
    }

    /// The metadata written beside each file (`<file>.json`); `source_url` is the
    /// URL without its query, so no signature lands on disk.
    public static func sidecar(_ file: ArchivedFile) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func time(_ value: Timestamp?) -> JSONValue { value.map { .string(MappingClock.iso8601(milliseconds: $0.milliseconds)) } ?? .null }
        return .object(
            JSONObject([
                .init(key: "company_id", value: .string(file.companyID)),
                .init(key: "candidate_id", value: .string(file.candidateID)),
                .init(key: "job_id", value: .number(JSONNumber(file.jobID))),
                .init(key: "mapping", value: .string(file.mapping)),
                .init(key: "kind", value: .string(file.kind)),
                .init(key: "original_name", value: text(file.originalName)),
                .init(key: "content_type", value: text(file.contentType)),
                .init(key: "sniffed_type", value: text(file.sniffedType)),
                .init(key: "type_mismatch", value: text(file.typeMismatch)),
                .init(key: "size", value: .number(JSONNumber(file.size))),
                .init(key: "sha256", value: .string(file.sha256)),
                .init(key: "downloaded_at", value: time(file.downloadedAt)),
                .init(key: "url_expiry", value: time(file.urlExpiry)),
                .init(key: "source_url", value: .string(file.sourceURL)),
                .init(key: "retain_until", value: time(file.retainUntil)),
            ]))
    }

    /// Re-hashes a stored file: `nil` when it matches, else what is wrong.
    public func verify(_ file: ArchivedFile) -> String? {
        let path = absolute(file.path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "missing: \(file.path)" }
        defer { close(fd) }
        var hasher = SHA256()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return "unreadable: \(file.path)"
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            size += Int64(count)
        }
        let digest = hasher.finalize().lowercaseHex
        if digest != file.sha256 { return "corrupt: \(file.path) (sha256 \(digest.prefix(16))…, recorded \(file.sha256.prefix(16))…)" }
        if size != file.size { return "size differs: \(file.path) (\(size) bytes, recorded \(file.size))" }
        return nil
    }

    /// Deletes a file and its sidecar; a file already gone is fine.
    public func remove(_ file: ArchivedFile) throws(IOFailure) {
        for path in [absolute(file.path), absolute(file.path) + ".json"] {
            if unlink(path) != 0 && errno != ENOENT { throw IOFailure.errno("cannot delete \(file.path)") }
        }
        // Empty candidate directories go too; a failure here is harmless.
        var directory = (absolute(file.path) as NSString).deletingLastPathComponent
        while directory.count > root.count, rmdir(directory) == 0 {
            directory = (directory as NSString).deletingLastPathComponent
        }
    }
}

/// Deletes archived files whose retention ended, file and sidecar first, then
/// the record (a crash in between leaves a record whose file is gone, which
/// the next purge finishes; never a file without a record that purge forgets).
public struct ArchivePurger: Sendable {
    let store: any ArchiveStore
    let layout: ArchiveLayout

    /// `store` and `layout` must describe the same archive, or purging drops
    /// records and leaves their files behind.
    public init(store: any ArchiveStore, layout: ArchiveLayout) {
        self.store = store
        self.layout = layout
    }

    /// What one purge did, or in a dry run would do.
    public struct Outcome: Sendable {
        /// Files past retention handled, including those whose removal failed.
        public var deleted = 0
        /// Their recorded sizes, summed.
        public var bytes: Int64 = 0
        /// One text per file that could not be removed, or the listing error that
        /// ended the run early.
        public var failures: [String] = []
    }

    /// `progress` sees each file as it is handled (for the CLI's output).
    public func purge(now: Timestamp, dryRun: Bool, progress: (ArchivedFile) -> Void = { _ in }) -> Outcome {
        var outcome = Outcome()
        var lastID: Int64 = 0
        while true {
            let batch: [ArchivedFile]
            do {
                batch = try store.archivedFiles(retainedBefore: now, afterID: lastID, limit: 500)
            } catch {
                outcome.failures.append("listing expired archive records failed: \(error)")
                return outcome
            }
            guard let last = batch.last?.id else { return outcome }
            lastID = last
            for file in batch {
                progress(file)
                outcome.deleted += 1
                outcome.bytes += file.size
                if dryRun { continue }
                do {
                    try layout.remove(file)
                    if let id = file.id { try store.deleteArchivedFile(id: id) }
                } catch {
                    outcome.failures.append("\(file.path): \(error)")
                }
            }
        }
    }
}

extension SHA256.Digest {
    /// The digest as the archive records it: 64 lowercase hex digits.
    var lowercaseHex: String { map { String(format: "%02x", $0) }.joined() }
}
