import Crypto
import CurlClient
import DurableFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Downloads one signed file URL into a temp file on the archive's volume,
/// hashing on the fly, following redirects by hand (each hop re-checked
/// against the host policy) and checking every connection's real address.
///
/// The curl thread only moves bytes into a bounded buffer; hashing, writing
/// and fsync happen here, on the `BlockingIOPool`, so a slow disk pauses curl
/// (`CURL_WRITEFUNC_PAUSE`) instead of filling memory.
public struct ArchiveDownloader: Sendable {
    /// Limits that apply to every hop of a download (each redirect is a new transfer).
    public struct Settings: Sendable {
        /// `<archive>/.partial`: same volume as the archive, so the final rename is atomic.
        public var partialDirectory: String
        /// Bounds each hop's connection phase.
        public var connectTimeoutMilliseconds = 10_000
        /// There is no overall timeout (large files): a transfer slower than this
        /// for `lowSpeedSeconds` fails instead, and is retried before the deadline.
        public var lowSpeedBytesPerSecond = 1024
        /// How long a transfer may stay below `lowSpeedBytesPerSecond`.
        public var lowSpeedSeconds = 60
        /// Redirects followed by hand, each re-checked against the host policy;
        /// one more is a permanent refusal.
        public var maxRedirects = 5
        /// A CA bundle file instead of the system's.
        public var caBundle: String?
        /// TLS peer and host verification; off only by an operator's explicit choice.
        public var verifyPeer = true
        /// Volumes that must keep `freeSpaceFloorBytes` free (the archive's and the store's).
        public var guardedPaths: [String] = []
        /// Checked before each hop, against `Content-Length` and every 64 MiB while
        /// streaming; falling below it defers the job (`lowSpace`) instead of failing it.
        public var freeSpaceFloorBytes: Int64 = 512 << 20

        /// `partialDirectory` must be on the archive's volume; `ArchiveConfiguration` passes its `.partial`.
        public init(partialDirectory: String) {
            self.partialDirectory = partialDirectory
        }
    }

    /// A complete download, fsync'd, still under its temp name.
    public struct Downloaded: Sendable {
        /// Under `partialDirectory`; the caller places the file or unlinks it.
        public var temporaryPath: String
        /// Bytes written, all of them hashed.
        public var size: Int64
        /// Lowercase hex of the bytes written; names the file and finds duplicates.
        public var sha256: String
        /// As the server declared it; often generic or wrong (see `sniffed`).
        public var contentType: String?
        /// What the first 512 bytes look like; `nil` when nothing known matches.
        public var sniffed: SniffedType?
        /// The URL that finally answered 2XX (after redirects).
        public var finalURL: RawURL
        /// The server's cleaned `Content-Disposition` file name: recorded as the
        /// original name; its extension is used only when sniffing finds none.
        public var contentDispositionName: String?
    }

    /// Why a fetch produced no file; `ArchiveExecutor` turns each into an attempt
    /// outcome. Its texts name a host at most, never a URL's path or query
    /// (`errorBody` is the server's raw bytes).
    public enum Failure: Error, Sendable {
        /// Refused by policy (host, scheme, address, redirect): permanent.
        case refused(String)
        /// `errorBody`: the first kilobytes of a 400/403 answer (an S3 error document says why).
        case httpStatus(Int, retryAfter: String?, errorBody: [UInt8]?)
        /// Larger than the mapping's `max_bytes`: permanent.
        case tooLarge(limit: Int64)
        /// Network, TLS or timeout trouble: worth a retry before the deadline.
        case transport(CurlError)
        /// Below the free-space floor: wait, do not fail.
        case lowSpace(String)
        /// The temp file could not be created, written or synced.
        case io(String)
    }

    let client: CurlClient
    let io: BlockingIOPool
    let settings: Settings

    /// `io` does the hashing and writing, so no disk work runs on the curl thread
    /// or the cooperative pool. Neither `client` nor `io` is shut down here.
    public init(client: CurlClient, io: BlockingIOPool, settings: Settings) {
        self.client = client
        self.io = io
        self.settings = settings
    }

    /// Fetches `url` (byte-exact) under `policy`, at most `maxBytes`.
    public func fetch(_ url: String, policy: ArchiveHostPolicy, maxBytes: Int64, tag: String) async -> Result<Downloaded, Failure> {
        guard var current = RawURL(url) else {
            return .failure(.refused("the file URL is not an absolute http(s) URL this archive can read"))
        }
        var hops = 0
        while true {
            let allowPrivate: Bool
            switch policy.check(current) {
            case .refused(let reason):
                return .failure(.refused(hops == 0 ? reason : "redirect \(hops): \(reason)"))
            case .allowed(let privateAddresses):
                allowPrivate = privateAddresses
            }
            if let problem = freeSpaceProblem(expected: 0) { return .failure(.lowSpace(problem)) }
            var request = CurlDownloadRequest(url: current.text, maxBytes: maxBytes)
            request.connectTimeoutMilliseconds = settings.connectTimeoutMilliseconds
            request.lowSpeedBytesPerSecond = settings.lowSpeedBytesPerSecond
            request.lowSpeedSeconds = settings.lowSpeedSeconds
            request.caBundle = settings.caBundle
            request.verifyPeer = settings.verifyPeer
            let host = current.host
            request.addressPolicy = { bytes in
                guard !allowPrivate, let addressClass = AddressClass.classify(bytes) else { return nil }
                return
                    "\(host) resolved to \(AddressClass.text(bytes)), a \(addressClass.rawValue) address (list the host in archive_allowed_hosts to allow it)"
            }
            let download = client.download(request)
            let head: CurlResponseHead
            do {
                head = try await download.head()
            } catch {
                download.cancel()
                if case .refused(let reason) = classify(error, maxBytes: maxBytes), hops > 0 {
                    return .failure(.refused("redirect \(hops) to \(current.origin): \(reason)"))
                }
                return .failure(classify(error, maxBytes: maxBytes))
            }
            if [301, 302, 303, 307, 308].contains(head.status) {
                download.cancel()
                hops += 1
                guard hops <= settings.maxRedirects else { return .failure(.refused("more than \(settings.maxRedirects) redirects")) }
                guard let location = head.header("Location"), let next = current.resolving(location) else {
                    return .failure(.refused("redirect \(hops) without a usable Location"))
                }
                current = next
                continue
            }
            guard (200..<300).contains(head.status) else {
                var errorBody: [UInt8]?
                if head.status == 400 || head.status == 403 {
                    errorBody = await ArchiveDownloader.readPrefix(download, limit: 16 * 1024)
                }
                download.cancel()
                return .failure(.httpStatus(head.status, retryAfter: head.header("Retry-After"), errorBody: errorBody))
            }
            if let length = head.header("Content-Length").flatMap({ Int64($0) }), let problem = freeSpaceProblem(expected: length) {
                download.cancel()
                return .failure(.lowSpace(problem))
            }
            return await stream(download, head: head, from: current, maxBytes: maxBytes, tag: tag)
        }
    }

    /// Up to `limit` bytes of a (small) error body; nil when it cannot be read.
    static func readPrefix(_ download: CurlDownload, limit: Int) async -> [UInt8]? {
        var bytes: [UInt8] = []
        do {
            while bytes.count < limit, let chunks = try await download.nextChunks() {
                for chunk in chunks { bytes += chunk.prefix(limit - bytes.count) }
            }
        } catch {
            return bytes.isEmpty ? nil : bytes
        }
        return bytes
    }

    func stream(_ download: CurlDownload, head: CurlResponseHead, from url: RawURL, maxBytes: Int64, tag: String) async -> Result<Downloaded, Failure>
    {
        let path = (settings.partialDirectory as NSString).appendingPathComponent("\(tag)-\(UInt64.random(in: 0...UInt64.max)).part")
        let file: TempFile
        switch await io.result({ TempFile.create(path) }) {
        case .success(let created): file = created
        case .failure(let error):
            download.cancel()
            return .failure(.io(error.message))
        }
        var nextSpaceCheck: Int64 = 64 << 20
        while true {
            let chunks: [[UInt8]]?
            do {
                chunks = try await download.nextChunks()
            } catch {
                file.discard()
                return .failure(classify(error, maxBytes: maxBytes))
            }
            guard let chunks else { break }
            if case .failure(let error) = await io.result({ file.append(chunks) }) {
                download.cancel()
                file.discard()
                return .failure(.io(error.message))
            }
            if file.size >= nextSpaceCheck {
                nextSpaceCheck = file.size + (64 << 20)
                if let problem = freeSpaceProblem(expected: 0) {
                    download.cancel()
                    file.discard()
                    return .failure(.lowSpace(problem))
                }
            }
        }
        if case .failure(let error) = await io.result({ file.finish() }) {
            file.discard()
            return .failure(.io(error.message))
        }
        return .success(
            Downloaded(
                temporaryPath: path, size: file.size, sha256: file.digestHex, contentType: head.header("Content-Type"),
                sniffed: SniffedType.sniff(file.prefix), finalURL: url,
                contentDispositionName: head.header("Content-Disposition").flatMap(ArchiveDownloader.dispositionName)))
    }

    func classify(_ error: CurlError, maxBytes: Int64) -> Failure {
        switch error.kind {
        case .addressRefused: return .refused(error.message)
        case .responseTooLarge: return .tooLarge(limit: maxBytes)
        case .unsupportedScheme: return .refused("unsupported scheme")
        default: return .transport(error)
        }
    }

    /// `nil` when every guarded volume keeps the floor after `expected` more bytes.
    func freeSpaceProblem(expected: Int64) -> String? {
        for path in settings.guardedPaths {
            var stats = statvfs()
            guard statvfs(path, &stats) == 0 else { continue }
            let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
            if free - expected < settings.freeSpaceFloorBytes {
                return
                    "free space on the volume of \(path) would fall below the floor (\(free >> 20) MiB free, \(expected >> 20) MiB needed, floor \(settings.freeSpaceFloorBytes >> 20) MiB)"
            }
        }
        return nil
    }

    /// `filename="cv.pdf"` (or RFC 5987 `filename*=UTF-8''cv.pdf`) from a Content-Disposition value.
    static func dispositionName(_ value: String) -> String? {
        for part in value.split(separator: ";") {
            let trimmed = part.drop(while: { $0 == " " })
            if trimmed.lowercased().hasPrefix("filename*=") {
                let raw = trimmed.dropFirst("filename*=".count)
                let encoded = raw.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false).last.map(String.init) ?? ""
                return ArchiveNames.clean(ArchiveNames.percentDecoded(encoded))
            }
        }
        for part in value.split(separator: ";") {
            let trimmed = part.drop(while: { $0 == " " })
            if trimmed.lowercased().hasPrefix("filename=") {
                var name = String(trimmed.dropFirst("filename=".count))
                if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
                return ArchiveNames.clean(name)
            }
        }
        return nil
    }
}

/// A download's temporary file, hashed as it grows and its first bytes kept
/// for sniffing; written by one task at a time through the `BlockingIOPool`.
final class TempFile: @unchecked Sendable {
    let file: StagedFile
    private var hasher = SHA256()
    private(set) var prefix: [UInt8] = []
    private(set) var digestHex = ""

    var path: String { file.temporaryPath }
    var size: Int64 { file.size }

    private init(_ file: StagedFile) {
        self.file = file
    }

    static func create(_ path: String) -> Result<TempFile, IOFailure> {
        do throws(IOFailure) {
            return .success(TempFile(try StagedFile.create(at: path)))
        } catch {
            return .failure(error)
        }
    }

    func append(_ chunks: [[UInt8]]) -> Result<Void, IOFailure> {
        do throws(IOFailure) {
            for chunk in chunks {
                if prefix.count < 512 { prefix.append(contentsOf: chunk.prefix(512 - prefix.count)) }
                hasher.update(data: chunk)
                try file.append(chunk)
            }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// fsync and close; the digest is final afterwards.
    func finish() -> Result<Void, IOFailure> {
        digestHex = hasher.finalize().lowercaseHex
        do throws(IOFailure) {
            try file.finish()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    func discard() { file.discard() }
}
