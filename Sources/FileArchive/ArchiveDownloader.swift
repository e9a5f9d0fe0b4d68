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
/// and fsync happen here, on the blocking-I/O pool, so a slow disk pauses curl
/// (`CURL_WRITEFUNC_PAUSE`) instead of filling memory.
public struct ArchiveDownloader: Sendable {
    public struct Settings: Sendable {
        /// `<archive>/.partial`: same volume as the archive, so the final rename is atomic.
        public var partialDirectory: String
        public var connectTimeoutMilliseconds = 10_000
        public var lowSpeedBytesPerSecond = 1024
        public var lowSpeedSeconds = 60
        public var maxRedirects = 5
        public var caBundle: String?
        public var verifyPeer = true
        /// Volumes that must keep `freeSpaceFloorBytes` free (the archive's and the store's).
        public var guardedPaths: [String] = []
        public var freeSpaceFloorBytes: Int64 = 512 << 20

        public init(partialDirectory: String) {
            self.partialDirectory = partialDirectory
        }
    }

    /// A complete download, fsync'd, still under its temp name.
    public struct Downloaded: Sendable {
        public var temporaryPath: String
        public var size: Int64
        public var sha256: String
        public var contentType: String?
        public var sniffed: SniffedType?
        /// The URL that finally answered 2XX (after redirects).
        public var finalURL: RawURL
        public var contentDispositionName: String?
    }

    public enum Failure: Error, Sendable {
        /// Refused by policy (host, scheme, address, redirect): permanent.
        case refused(String)
        /// `errorBody`: the first kilobytes of a 400/403 answer (an S3 error document says why).
        case httpStatus(Int, retryAfter: String?, errorBody: [UInt8]?)
        case tooLarge(limit: Int64)
        case transport(CurlError)
        /// Below the free-space floor: wait, do not fail.
        case lowSpace(String)
        case io(String)
    }

    let client: CurlClient
    let io: BlockingIOPool
    let settings: Settings

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
                return "\(host) resolved to \(AddressClass.text(bytes)), a \(addressClass.rawValue) address (list the host in archive_allowed_hosts to allow it)"
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

    func stream(_ download: CurlDownload, head: CurlResponseHead, from url: RawURL, maxBytes: Int64, tag: String) async -> Result<Downloaded, Failure> {
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
                try? await io.run { file.discard() }
                return .failure(classify(error, maxBytes: maxBytes))
            }
            guard let chunks else { break }
            if case .failure(let error) = await io.result({ file.append(chunks) }) {
                download.cancel()
                try? await io.run { file.discard() }
                return .failure(.io(error.message))
            }
            if file.size >= nextSpaceCheck {
                nextSpaceCheck = file.size + (64 << 20)
                if let problem = freeSpaceProblem(expected: 0) {
                    download.cancel()
                    try? await io.run { file.discard() }
                    return .failure(.lowSpace(problem))
                }
            }
        }
        if case .failure(let error) = await io.result({ file.finish() }) {
            try? await io.run { file.discard() }
            return .failure(.io(error.message))
        }
        return .success(Downloaded(
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
                return "free space on the volume of \(path) would fall below the floor (\(free >> 20) MiB free, \(expected >> 20) MiB needed, floor \(settings.freeSpaceFloorBytes >> 20) MiB)"
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
/// for sniffing; written by one task at a time through the blocking pool.
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
