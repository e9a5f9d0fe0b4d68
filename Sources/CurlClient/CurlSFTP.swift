import CCurlShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How an SFTP server proves who it is before anything is sent.
public enum SFTPHostKey: Sendable, Hashable {
    /// The base64 SHA-256 of the server's public key, as `ssh-keygen -lf`
    /// prints it (with or without its `SHA256:` prefix).
    case sha256(String)
    /// An OpenSSH `known_hosts` file; a host not in it, or with another key, is refused.
    case knownHosts(path: String)
}

/// Credentials and the pinned host key for one SFTP server. Never logged:
/// `description` shows the user and how the key is pinned, nothing secret.
public struct SFTPLogin: Sendable, Hashable, CustomStringConvertible {
    /// The account on the server.
    public var user: String
    /// A private key file (OpenSSH format; ed25519 works with Debian's libssh2,
    /// which cannot sign with RSA for OpenSSH ≥ 8.8); its public half is derived.
    public var privateKeyFile: String
    /// The key file's passphrase, if it has one.
    public var passphrase: String?
    /// Required: an SFTP login without a pinned host key would hand payroll data to anyone on the path.
    public var hostKey: SFTPHostKey

    /// All parts as given; nothing is read until a transfer starts.
    public init(user: String, privateKeyFile: String, passphrase: String? = nil, hostKey: SFTPHostKey) {
        self.user = user
        self.privateKeyFile = privateKeyFile
        self.passphrase = passphrase
        self.hostKey = hostKey
    }

    public var description: String {
        switch hostKey {
        case .sha256: return "SFTPLogin(user: \(user), host key: pinned SHA-256)"
        case .knownHosts(let path): return "SFTPLogin(user: \(user), host key: \(path))"
        }
    }
}

/// One SFTP operation on one remote path.
public struct SFTPRequest: Sendable {
    /// What to do at `url`.
    public enum Operation: Sendable, Hashable {
        /// Writes the local file to the URL's path, truncating what is there
        /// (SFTP open with WRITE|CREAT|TRUNC: never append mode).
        case uploadFile(path: String)
        /// Writes these bytes to the URL's path, truncating what is there.
        case uploadBytes([UInt8])
        /// Renames `from` to `to` (absolute remote paths). OpenSSH refuses when
        /// `to` exists: a rename never replaces a file.
        case rename(from: String, to: String)
        /// Asks whether the URL's path exists (its size, without reading it).
        case exists
    }

    /// `sftp://host[:port]/absolute/path`; user and key come from `login`.
    public var url: String
    /// Who logs in, and the host key the server must show.
    public var login: SFTPLogin
    /// What is done at `url`.
    public var operation: Operation
    /// Mode of a file the upload creates (the server's umask applies too).
    public var fileMode: Int = 0o640
    /// Bounds the TCP connect and SSH handshake.
    public var connectTimeoutMilliseconds = 10_000
    /// A transfer slower than 1 KiB/s for this long fails as timed out.
    public var lowSpeedSeconds = 60

    /// Timeouts default to 10 s to connect and 60 s below 1 KiB/s.
    public init(url: String, login: SFTPLogin, operation: Operation) {
        self.url = url
        self.login = login
        self.operation = operation
    }
}

/// What a failed SFTP operation means, from libcurl's code (libssh2 backend,
/// checked against OpenSSH's sftp-server): what a caller decides on.
public enum SFTPFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's host key is not the pinned one, or the host is not in known_hosts (curl 60).
    case hostKeyRejected
    /// The key was refused, or the key file or passphrase is wrong (curl 67).
    case loginDenied
    /// The server refused to write or rename there (curl 9, or a refused rename).
    case permissionDenied
    /// The remote path, or its folder, does not exist (curl 78).
    case notFound
    /// The server could not store the file: disk full or over quota (curl 70), or the upload was refused (curl 25).
    case serverRefused(String)
    /// A quote command (rename) failed: the target exists, the source is missing, or the server said no (curl 21).
    case renameFailed(String)
    /// No connection, a timeout, a dropped session: worth a retry (curl 6, 7, 28, 55, 56, 79 …).
    case unreachable(String)
    /// The local file could not be read.
    case localFile(String)
    /// Any other curl failure.
    case other(CurlError)

    public var description: String {
        switch self {
        case .hostKeyRejected: return "the server's host key does not match the pinned key (or the host is not in known_hosts)"
        case .loginDenied: return "login refused: the server did not accept the key (or the key file or passphrase is wrong)"
        case .permissionDenied: return "permission denied by the server"
        case .notFound: return "no such file or folder on the server"
        case .serverRefused(let why): return "the server could not store the file: \(why)"
        case .renameFailed(let why): return "rename refused by the server: \(why)"
        case .unreachable(let why): return "server unreachable: \(why)"
        case .localFile(let why): return "local file unreadable: \(why)"
        case .other(let error): return "\(error)"
        }
    }

    init(_ error: CurlError) {
        switch error.code {
        case Int(CURLE_PEER_FAILED_VERIFICATION.rawValue): self = .hostKeyRejected
        case Int(CURLE_LOGIN_DENIED.rawValue): self = .loginDenied
        case Int(CURLE_REMOTE_ACCESS_DENIED.rawValue): self = .permissionDenied
        case Int(CURLE_REMOTE_FILE_NOT_FOUND.rawValue): self = .notFound
        case Int(CURLE_QUOTE_ERROR.rawValue): self = .renameFailed(error.message)
        case Int(CURLE_REMOTE_DISK_FULL.rawValue), Int(CURLE_UPLOAD_FAILED.rawValue): self = .serverRefused(error.message)
        case Int(CURLE_COULDNT_RESOLVE_HOST.rawValue), Int(CURLE_COULDNT_CONNECT.rawValue), Int(CURLE_OPERATION_TIMEDOUT.rawValue),
            Int(CURLE_SEND_ERROR.rawValue), Int(CURLE_RECV_ERROR.rawValue), Int(CURLE_SSH.rawValue), Int(CURLE_GOT_NOTHING.rawValue):
            self = .unreachable(error.message)
        default: self = .other(error)
        }
    }
}

extension CurlClient {
    /// Runs one SFTP operation. `.exists` answers false for a missing path
    /// instead of throwing; every other failure throws what it means.
    @discardableResult
    public func sftp(_ request: SFTPRequest) async throws(SFTPFailure) -> Bool {
        if Task.isCancelled { throw SFTPFailure.other(CurlError(code: CURLE_ABORTED_BY_CALLBACK)) }
        let id = engine.nextID()
        let result: Result<Void, SFTPFailure> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                engine.submit(
                    CurlMultiEngine.Submission(
                        id: id,
                        make: { () throws(CurlError) in try SFTPTransfer(request, continuation: continuation) },
                        fail: { continuation.resume(returning: .failure(SFTPFailure($0))) }))
            }
        } onCancel: {
            engine.cancel(id: id)
        }
        switch result {
        case .success: return true
        case .failure(.notFound) where request.operation == .exists: return false
        case .failure(let failure): throw failure
        }
    }
}

/// The curl-thread side of an SFTP operation.
final class SFTPTransfer: EngineTransfer {
    let handle: UnsafeMutableRawPointer
    let continuation: CheckedContinuation<Result<Void, SFTPFailure>, Never>
    var quote: UnsafeMutablePointer<curl_slist>?
    var selfPointer: Unmanaged<SFTPTransfer>?
    /// The upload's source: a file descriptor, or bytes with a read offset.
    var descriptor: Int32 = -1
    var bytes: [UInt8] = []
    var offset = 0
    var readError: String?

    init(_ request: SFTPRequest, continuation: CheckedContinuation<Result<Void, SFTPFailure>, Never>) throws(CurlError) {
        Curl.initialize()
        guard let handle = curl_easy_init() else { throw CurlError(code: CURLE_FAILED_INIT) }
        self.handle = handle
        self.continuation = continuation
        let pointer = Unmanaged.passRetained(self)
        selfPointer = pointer
        // The settings every transfer shares (no environment proxy, no signals), sftp only.
        var code = CurlOptions.common(
            handle, url: request.url, proxy: nil, verifyPeer: true, caBundle: nil,
            connectTimeoutMilliseconds: request.connectTimeoutMilliseconds, protocols: "sftp")
        func set(_ result: CURLcode) {
            if code == CURLE_OK { code = result }
        }
        set(jb_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024))
        set(jb_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, request.lowSpeedSeconds))
        set(jb_easy_setopt_string(handle, CURLOPT_USERNAME, request.login.user))
        set(jb_easy_setopt_long(handle, CURLOPT_SSH_AUTH_TYPES, Int(CURLSSH_AUTH_PUBLICKEY)))
        set(jb_easy_setopt_string(handle, CURLOPT_SSH_PRIVATE_KEYFILE, request.login.privateKeyFile))
        // Empty: libssh2 derives the public key from the private one.
        set(jb_easy_setopt_string(handle, CURLOPT_SSH_PUBLIC_KEYFILE, ""))
        if let passphrase = request.login.passphrase { set(jb_easy_setopt_string(handle, CURLOPT_KEYPASSWD, passphrase)) }
        switch request.login.hostKey {
        case .sha256(let fingerprint):
            // curl wants the bare base64 (padding optional), not ssh-keygen's "SHA256:" prefix.
            var bare = fingerprint.trimmingCharacters(in: .whitespaces)
            if bare.hasPrefix("SHA256:") { bare.removeFirst(7) }
            set(jb_easy_setopt_string(handle, CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, bare))
        case .knownHosts(let path):
            // Without a key callback libcurl refuses unknown and changed keys alike,
            // and never writes to the file.
            set(jb_easy_setopt_string(handle, CURLOPT_SSH_KNOWNHOSTS, path))
        }
        set(jb_easy_setopt_long(handle, CURLOPT_FTP_CREATE_MISSING_DIRS, 0))
        // A fresh SSH session per operation, closed after it: curl would otherwise
        // reuse a session to the same host:port opened with another key or host
        // pin (it compares neither), so a changed pin would go unchecked. A
        // nightly file costs three or four handshakes.
        set(jb_easy_setopt_long(handle, CURLOPT_FRESH_CONNECT, 1))
        set(jb_easy_setopt_long(handle, CURLOPT_FORBID_REUSE, 1))
        switch request.operation {
        case .uploadFile(let path):
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor < 0 { readError = String(cString: strerror(errno)) }
            var info = stat()
            let size = descriptor >= 0 && fstat(descriptor, &info) == 0 ? Int64(info.st_size) : 0
            set(jb_easy_setopt_long(handle, CURLOPT_UPLOAD, 1))
            set(jb_easy_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(size)))
            set(jb_easy_setopt_long(handle, CURLOPT_NEW_FILE_PERMS, request.fileMode))
        case .uploadBytes(let data):
            bytes = data
            set(jb_easy_setopt_long(handle, CURLOPT_UPLOAD, 1))
            set(jb_easy_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(data.count)))
            set(jb_easy_setopt_long(handle, CURLOPT_NEW_FILE_PERMS, request.fileMode))
        case .rename(let from, let to):
            // Runs before the (empty) transfer; NOBODY then only stats the URL.
            quote = curl_slist_append(nil, "rename \(SFTPTransfer.quoted(from)) \(SFTPTransfer.quoted(to))")
            set(jb_easy_setopt_slist(handle, CURLOPT_QUOTE, quote))
            set(jb_easy_setopt_long(handle, CURLOPT_NOBODY, 1))
        case .exists:
            set(jb_easy_setopt_long(handle, CURLOPT_NOBODY, 1))
        }
        set(jb_easy_setopt_data_callback(handle, CURLOPT_READFUNCTION, sftpRead))
        set(jb_easy_setopt_pointer(handle, CURLOPT_READDATA, pointer.toOpaque()))
        set(jb_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, sftpDiscard))
        guard code == CURLE_OK, readError == nil else {
            cleanup()
            throw CurlError(code: code == CURLE_OK ? CURLE_READ_ERROR : code)
        }
    }

    /// A path in double quotes for a quote command (curl's own quoting rule).
    static func quoted(_ path: String) -> String {
        "\"" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    func complete(_ code: CURLcode) {
        if code == CURLE_OK {
            continuation.resume(returning: .success(()))
        } else if let readError {
            continuation.resume(returning: .failure(.localFile(readError)))
        } else {
            continuation.resume(returning: .failure(SFTPFailure(CurlError(code: code))))
        }
    }

    func abort(_ error: CurlError) {
        continuation.resume(returning: .failure(.other(error)))
    }

    func cleanup() {
        curl_easy_cleanup(handle)
        curl_slist_free_all(quote)
        quote = nil
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        selfPointer?.release()
        selfPointer = nil
    }
}

private let sftpRead: jb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<SFTPTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let capacity = size * count
    if transfer.descriptor >= 0 {
        let got = read(transfer.descriptor, buffer, capacity)
        if got < 0 {
            transfer.readError = String(cString: strerror(errno))
            return jb_readfunc_abort()
        }
        return got
    }
    let length = min(capacity, transfer.bytes.count - transfer.offset)
    if length > 0 {
        transfer.bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress { memcpy(buffer, base + transfer.offset, length) }
        }
        transfer.offset += length
    }
    return length
}

private let sftpDiscard: jb_curl_data_callback = { _, size, count, _ in size * count }
