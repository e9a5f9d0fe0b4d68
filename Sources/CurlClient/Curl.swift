import CCurlShim

#if canImport(Glibc)
import Glibc
#endif

/// libcurl must be initialised once, before any thread uses it; Swift runs a
/// global `let` initialiser exactly once, thread-safely.
private let curlGlobalInitResult: CURLcode = jb_global_init_all()

/// libcurl's one-time global set-up and its version; transfers go through a
/// `CurlEngine` and the clients made from it.
public enum Curl {
    /// Initialises libcurl (idempotent); call early, e.g. at process start.
    @discardableResult
    public static func initialize() -> Bool {
        curlGlobalInitResult == CURLE_OK
    }

    /// libcurl's own version line, e.g. `libcurl/7.88.1 OpenSSL/3.0.15 ...`.
    public static var versionDescription: String {
        String(cString: jb_version_string())
    }
}

/// A failed transfer. Never carries the URL: signed URLs and query strings
/// hold tokens and personal data.
public struct CurlError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of failure, so callers can tell a refusal from trouble worth a
    /// retry without parsing `message`.
    public enum Kind: Sendable, Hashable {
        /// Name lookup failed, for the host or the configured proxy.
        case couldNotResolveHost
        /// No connection could be opened to any address of the host.
        case couldNotConnect
        /// A connect or whole-transfer timeout ran out, or a download stayed below
        /// its low-speed limit for too long.
        case timedOut
        /// TLS set-up failed: the handshake, the peer's certificate, or a
        /// certificate file that could not be used (e.g. a bad `caBundle`).
        case tls
        /// The body passed the caller's size cap; the transfer stopped there.
        case responseTooLarge(limit: Int)
        /// The URL's scheme is neither http nor https, the only protocols allowed.
        case unsupportedScheme
        /// The task that asked for the transfer was cancelled.
        case cancelled
        /// The address policy refused the address the host resolved to.
        case addressRefused
        /// Any other `CURLcode`; `code` and `message` say which.
        case other
    }

    /// What to decide on; `code` keeps the exact libcurl value for the log.
    public var kind: Kind
    /// libcurl's `CURLcode`.
    public var code: Int
    /// curl's text for `code`, or the address policy's refusal reason; at most
    /// a host name, never the URL.
    public var message: String

    init(code: CURLcode, limit: Int? = nil) {
        self.code = Int(code.rawValue)
        self.message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .couldNotResolveHost
        case CURLE_COULDNT_CONNECT: kind = .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT: kind = .timedOut
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
            kind = .tls
        case CURLE_UNSUPPORTED_PROTOCOL: kind = .unsupportedScheme
        case CURLE_ABORTED_BY_CALLBACK: kind = .cancelled
        case CURLE_WRITE_ERROR where limit != nil: kind = .responseTooLarge(limit: limit ?? 0)
        default: kind = .other
        }
    }

    init(refusedAddress reason: String) {
        self.code = Int(CURLE_COULDNT_CONNECT.rawValue)
        self.message = reason
        self.kind = .addressRefused
    }

    public var description: String {
        if case .addressRefused = kind { return "connection refused by the address policy: \(message)" }
        if case .responseTooLarge(let limit) = kind { return "response larger than \(limit) bytes" }
        return "curl error \(code): \(message)"
    }
}
