import Clocks
import Crypto
import CurlClient
import Domain
import DurableFiles
import Foundation
import Logging
import Mapping
import Metrics

#if canImport(Glibc)
import Glibc
#endif

/// Delivers finished CSV files to their `sftp://` folders through libcurl,
/// following `FileUpload`'s states: upload under a hidden temporary name,
/// record `staged`, rename into place (never over an existing file), write
/// the `.done` marker, record `uploaded` with size and SHA-256, remove the
/// local copy. A failure is retried with backoff and never re-exports the
/// period; host-key, login and permission failures are logged as `ALERT`s.
public struct CSVUploader: Sendable {
    let store: any CSVUploadStore
    let registry: MappingRegistry
    let client: CurlClient
    let io: BlockingIOPool
    let clock: any WallClock
    let logger: Logger

    /// Store calls run on `io` (they block until committed); transfers on `client`'s curl thread.
    public init(store: any CSVUploadStore, registry: MappingRegistry, client: CurlClient, io: BlockingIOPool, clock: any WallClock, logger: Logger) {
        self.store = store
        self.registry = registry
        self.client = client
        self.io = io
        self.clock = clock
        self.logger = logger
    }

    /// Works through every upload that is due; returns when the next failed one is due again.
    @discardableResult
    public func processDue() async -> Timestamp? {
        let now = clock.now().milliseconds / 1000
        let due: [FileUpload]
        do {
            due = try await blocking { [store] in try store.csvUploadsToProcess(now: now) }
        } catch {
            logger.error("csv uploads: reading the queue failed", metadata: ["error": "\(error)"])
            return nil
        }
        var next: Int64?
        for upload in due {
            if Task.isCancelled { break }
            let after = await process(upload)
            if after.state != .uploaded { next = min(next ?? after.nextAttemptAt, after.nextAttemptAt) }
        }
        return next.map { Timestamp(seconds: $0) }
    }

    /// A redo of the period replaced the record meanwhile: this file is not the period's any more.
    struct Superseded: Error {}

    /// Why an attempt stopped, worded for the operator (no credentials, no file contents).
    struct AttemptFailure: Error {
        var reason: String
        /// Needs a person (host key, login, permissions, a name already taken): logged as an ALERT.
        var alert: Bool

        init(_ reason: String, alert: Bool = false) {
            self.reason = reason
            self.alert = alert
        }

        init(_ failure: SFTPFailure) {
            switch failure {
            case .hostKeyRejected, .loginDenied, .permissionDenied, .notFound, .serverRefused: self.init("\(failure)", alert: true)
            default: self.init("\(failure)")
            }
        }
    }

    /// Failures in a row after which any failure is an ALERT (a server that stays away needs a person too).
    static let alertAfterFailures = 5

    /// One upload, as far as it goes now; returns its recorded state.
    func process(_ upload: FileUpload) async -> FileUpload {
        var current = upload
        if current.state == .uploaded {
            await removeLocalCopy(&current)
            return current
        }
        do {
            let (login, mode, marker) = try settings(for: current)
            let remote = try RemoteName(current.remoteURL)
            if current.state == .pending {
                guard let local = current.localPath, try await localCopyMatches(local, current) else {
                    throw AttemptFailure("the local copy is missing or changed since the export (redo the period's export)", alert: true)
                }
                try await sftp(SFTPRequest(url: remote.temporaryURL, login: login, operation: .uploadFile(path: local)), mode: mode)
                current.state = .staged
                // Durable before the rename: a crash after it must read "renamed" from a missing temp file.
                try await record(current)
            }
            // Staged: a temporary file that is gone was renamed already (a crash after the
            // rename; the importer may even have taken the file). Otherwise the final name must
            // be free: a rename never replaces a file (OpenSSH refuses anyway; servers speaking
            // SFTP 5+ would overwrite, hence the check).
            if try await exists(remote.temporaryURL, login) {
                if try await exists(remote.url, login) {
                    throw AttemptFailure("\(remote.path) already exists on the server and is never overwritten; move it away", alert: true)
                }
                try await sftp(
                    SFTPRequest(url: remote.url, login: login, operation: .rename(from: remote.temporaryPath, to: remote.path)), mode: mode)
            }
            return try await finish(&current, remote, login, mode, marker)
        } catch is Superseded {
            logger.notice("csv upload: a redo of the period replaced this file; its upload starts over", metadata: ["mapping": "\(current.mapping)"])
            return current
        } catch {
            // Shutdown is not a failed attempt: the next start carries on from the record.
            if Task.isCancelled { return current }
            var failure = (error as? AttemptFailure) ?? AttemptFailure("\(error)")
            let now = clock.now().milliseconds / 1000  // the wait counts from the failure, not from the attempt's start
            current = current.failed(failure.reason, now: now)
            if current.attempts >= CSVUploader.alertAfterFailures { failure.alert = true }
            Counter(label: "jobylon_bridge_csv_uploads_total", dimensions: [("mapping", current.mapping), ("outcome", "failed")]).increment()
            let metadata: Logger.Metadata = [
                "mapping": "\(current.mapping)", "remote": "\(RemoteName.redacted(current.remoteURL))", "attempts": "\(current.attempts)",
                "retry_in_seconds": "\(current.nextAttemptAt - now)", "error": "\(failure.reason)",
            ]
            if failure.alert {
                logger.error("ALERT csv upload needs attention; retried with backoff", metadata: metadata)
            } else {
                logger.warning("csv upload failed; retried with backoff", metadata: metadata)
            }
            try? await record(current)
            return current
        }
    }

    /// After the rename: the marker, the record, the local copy removed.
    private func finish(_ current: inout FileUpload, _ remote: RemoteName, _ login: SFTPLogin, _ mode: Int, _ marker: Bool) async throws -> FileUpload
    {
        if marker {
            try await sftp(SFTPRequest(url: remote.url + ".done", login: login, operation: .uploadBytes([])), mode: mode)
        }
        current.state = .uploaded
        current.uploadedAt = clock.now().milliseconds / 1000
        current.lastError = nil
        try await record(current)
        Counter(label: "jobylon_bridge_csv_uploads_total", dimensions: [("mapping", current.mapping), ("outcome", "uploaded")]).increment()
        logger.notice(
            "csv uploaded",
            metadata: [
                "mapping": "\(current.mapping)", "remote": "\(RemoteName.redacted(current.remoteURL))", "bytes": "\(current.size)",
                "sha256": "\(current.sha256)",
            ])
        await removeLocalCopy(&current)
        return current
    }

    /// The mapping's login, with its variables filled in now (never stored).
    func settings(for upload: FileUpload) throws -> (SFTPLogin, Int, Bool) {
        let mappings = registry.current
        guard let mapping = mappings.mapping(named: upload.mapping), case .csv(let csv) = mapping.target, let sftp = csv.sftp else {
            throw AttemptFailure("mapping \(upload.mapping) is no longer a loaded sftp csv mapping", alert: true)
        }
        func fill(_ text: String) -> String { mappings.variables.substitute(text, mask: false) }
        let user = fill(sftp.user)
        let key = fill(sftp.privateKeyFile)
        let passphrase = sftp.passphrase.map(fill)
        let hostKey: SFTPHostKey = sftp.hostKeySHA256.map { .sha256(fill($0)) } ?? .knownHosts(path: fill(sftp.knownHosts ?? ""))
        // Judged by the variables, not by the text (a passphrase may well contain "${").
        if let unset = mappings.held[upload.mapping], !unset.isEmpty {
            throw AttemptFailure("unset variables: \(unset.joined(separator: ", "))", alert: true)
        }
        return (SFTPLogin(user: user, privateKeyFile: key, passphrase: passphrase, hostKey: hostKey), sftp.fileMode, csv.doneMarker)
    }

    private func sftp(_ request: SFTPRequest, mode: Int) async throws {
        var request = request
        request.fileMode = mode
        do throws(SFTPFailure) {
            try await client.sftp(request)
        } catch {
            throw AttemptFailure(error)
        }
    }

    private func exists(_ url: String, _ login: SFTPLogin) async throws -> Bool {
        do throws(SFTPFailure) {
            return try await client.sftp(SFTPRequest(url: url, login: login, operation: .exists))
        } catch {
            throw AttemptFailure(error)
        }
    }

    private func localCopyMatches(_ path: String, _ upload: FileUpload) async throws -> Bool {
        try await blocking { FileHasher.sha256(path: path) == upload.sha256 }
    }

    /// Throws `Superseded` when a redo replaced the record.
    private func record(_ upload: FileUpload) async throws {
        guard try await blocking({ [store] in try store.recordCSVUpload(upload) }) else { throw Superseded() }
    }

    private func removeLocalCopy(_ upload: inout FileUpload) async {
        guard let path = upload.localPath else { return }
        let failure: Int32? = try? await blocking { unlink(path) != 0 && errno != ENOENT ? errno : nil }
        if let failure {
            logger.error("csv upload: the local copy could not be removed", metadata: ["path": "\(path)", "errno": "\(failure)"])
            return
        }
        upload.localPath = nil
        let cleared = upload
        try? await record(cleared)
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let result: Result<T, any Error> = try await io.run {
            do { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// An `sftp://host[:port]/path` split into what the transfers need.
struct RemoteName {
    /// The whole URL, and its path (`/abs/name.csv`, or `~/name.csv` for `/~/`).
    var url: String
    var path: String
    /// The hidden temporary file beside it.
    var temporaryURL: String
    var temporaryPath: String

    init(_ url: String) throws(CSVUploader.AttemptFailure) {
        guard url.lowercased().hasPrefix("sftp://"), let slash = url.dropFirst(7).firstIndex(of: "/"), url[slash...].count > 1 else {
            throw CSVUploader.AttemptFailure("\(RemoteName.redacted(url)) is not an sftp://host/path URL", alert: true)
        }
        let prefix = String(url[..<slash])
        if prefix.contains("@") { throw CSVUploader.AttemptFailure("the sftp:// URL must not hold a user (use the sftp block)", alert: true) }
        // The URL is passed to curl as it is; what curl would read differently from the server path is refused.
        if url.contains(where: { $0 == " " || $0 == "?" || $0 == "#" || $0 == "\"" || $0.asciiValue.map { $0 < 0x20 } ?? false }) {
            throw CSVUploader.AttemptFailure("the sftp:// file name must not contain spaces, ?, #, quotes or control characters", alert: true)
        }
        let urlPath = String(url[slash...])
        let temporary = FileUpload.temporaryPath(for: urlPath)
        self.url = url
        self.temporaryURL = prefix + temporary
        // curl's quote commands take server paths: `/~/x` in a URL is `x` in the login's home.
        func serverPath(_ path: String) -> String {
            let decoded = path.removingPercentEncoding ?? path
            return decoded.hasPrefix("/~/") ? String(decoded.dropFirst(3)) : decoded
        }
        self.path = serverPath(urlPath)
        self.temporaryPath = serverPath(temporary)
    }

    /// The URL with any user part of its authority (before an `@`) replaced by `…`, for logs.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "…" + String(rest[at...])
    }
}

/// SHA-256 as the uploads record it: 64 lowercase hex digits.
enum FileHasher {
    /// A file's, read in pieces; `nil` when it cannot be opened.
    static func sha256(path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
