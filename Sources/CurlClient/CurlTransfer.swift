import CCurlShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request, as the bridge sends it: bytes in, bytes out.
public struct CurlRequest: Sendable {
    /// Sent as given (`CURLOPT_CUSTOMREQUEST`); `HEAD` also tells curl to expect no body.
    public var method: String
    /// Passed to curl as given; keep it out of logs and error texts (its query
    /// can hold tokens and personal data).
    public var url: String
    /// Sent in order as `name: value`; curl's `Expect: 100-continue` is always suppressed.
    public var headers: [(name: String, value: String)]
    /// Sent with its exact length whatever the method; `nil` sends no body.
    public var body: [UInt8]?
    /// Bounds the connection phase only; `totalTimeoutMilliseconds` bounds the whole exchange.
    public var connectTimeoutMilliseconds: Int
    /// Connect included; when it runs out the call fails with `.timedOut`
    /// instead of holding the job.
    public var totalTimeoutMilliseconds: Int
    /// Bodies above this size fail the transfer instead of filling memory.
    public var maxResponseBytes: Int
    /// An explicit proxy; `nil` means none (environment proxies are ignored).
    public var proxy: String?
    /// A CA bundle file instead of the system's.
    public var caBundle: String?
    /// TLS peer and host verification; off only by an operator's explicit choice.
    public var verifyPeer: Bool = true

    /// Defaults suit a small JSON call: GET, 10 s to connect, 60 s in all,
    /// an 8 MiB answer cap; TLS verified, no proxy.
    public init(
        method: String = "GET",
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil,
        connectTimeoutMilliseconds: Int = 10_000,
        totalTimeoutMilliseconds: Int = 60_000,
        maxResponseBytes: Int = 8 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.totalTimeoutMilliseconds = totalTimeoutMilliseconds
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A buffered answer. Redirects are not followed, so a 3XX arrives as it came.
public struct CurlResponse: Sendable {
    /// As received; any status is a response here, never a `CurlError`.
    public var status: Int
    /// Header lines of the final response, in order, names as sent.
    public var headers: [(name: String, value: String)]
    /// At most the request's `maxResponseBytes`; a larger answer fails with
    /// `.responseTooLarge` instead.
    public var body: [UInt8]

    /// Case-insensitive lookup of the first header with `name`.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}

/// Collects a response; reached from curl's C callbacks through an opaque pointer.
final class ResponseSink {
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    let limit: Int
    var overflowed = false

    init(limit: Int) {
        self.limit = limit
    }
}

private let writeBody: jb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    if sink.body.count + length > sink.limit {
        sink.overflowed = true
        return 0
    }
    buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
        sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}

private let writeHeader: jb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    switch HeaderLine(buffer, length: length) {
    case .statusLine: sink.headers.removeAll()  // a new block (after an interim 1XX): headers start over
    case .field(let name, let value): sink.headers.append((name, value))
    case .end, .other: break
    }
    return length
}

/// What every transfer of the bridge sets the same way.
enum CurlOptions {
    static func common(
        _ handle: UnsafeMutableRawPointer, url: String, proxy: String?, verifyPeer: Bool, caBundle: String?,
        connectTimeoutMilliseconds: Int, protocols: String = "http,https"
    ) -> CURLcode {
        var code = CURLE_OK
        func set(_ result: CURLcode) {
            if code == CURLE_OK { code = result }
        }
        set(jb_easy_setopt_string(handle, CURLOPT_URL, url))
        set(jb_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(jb_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, protocols))
        // No proxy unless configured: libcurl would otherwise honour http_proxy
        // from the environment and route personal data through it.
        set(jb_easy_setopt_string(handle, CURLOPT_PROXY, proxy ?? ""))
        set(jb_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, verifyPeer ? 1 : 0))
        set(jb_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, verifyPeer ? 2 : 0))
        if let caBundle { set(jb_easy_setopt_string(handle, CURLOPT_CAINFO, caBundle)) }
        set(jb_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds))
        return code
    }

    static func headerList(_ headers: [(name: String, value: String)], extra: [String] = []) -> UnsafeMutablePointer<curl_slist>? {
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        for line in extra { list = curl_slist_append(list, line) }
        return list
    }
}

/// One line as curl's HEADERFUNCTION delivers it.
enum HeaderLine {
    case statusLine
    case field(name: String, value: String)
    /// The blank line that ends a header block.
    case end
    case other

    init(_ buffer: UnsafeMutablePointer<CChar>, length: Int) {
        let line = buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
        if line.hasPrefix("HTTP/") {
            self = .statusLine
        } else if line == "\r\n" || line == "\n" {
            self = .end
        } else if let colon = line.firstIndex(of: ":") {
            self = .field(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines))
        } else {
            self = .other
        }
    }
}

/// One easy handle configured for a request, with everything it points to.
/// Owned by the thread that runs it; released with `cleanup()`.
final class EasyTransfer {
    let handle: UnsafeMutableRawPointer
    let sink: ResponseSink
    let sinkPointer: Unmanaged<ResponseSink>
    var headerList: UnsafeMutablePointer<curl_slist>?
    let limit: Int

    init(_ request: CurlRequest) throws(CurlError) {
        Curl.initialize()
        guard let handle = curl_easy_init() else { throw CurlError(code: CURLE_FAILED_INIT) }
        self.handle = handle
        self.limit = request.maxResponseBytes
        self.sink = ResponseSink(limit: request.maxResponseBytes)
        self.sinkPointer = Unmanaged.passRetained(sink)
        // curl adds "Expect: 100-continue" to larger POSTs; it only costs a round trip.
        headerList = CurlOptions.headerList(request.headers, extra: ["Expect:"])

        var code = CurlOptions.common(
            handle, url: request.url, proxy: request.proxy, verifyPeer: request.verifyPeer,
            caBundle: request.caBundle, connectTimeoutMilliseconds: request.connectTimeoutMilliseconds)
        func set(_ result: CURLcode) {
            if code == CURLE_OK { code = result }
        }
        set(jb_easy_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        set(jb_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.totalTimeoutMilliseconds))
        set(jb_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method))
        set(jb_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        set(jb_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, writeBody))
        set(jb_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, sinkPointer.toOpaque()))
        set(jb_easy_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, writeHeader))
        set(jb_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, sinkPointer.toOpaque()))
        set(jb_easy_setopt_pointer(handle, CURLOPT_PRIVATE, handle))
        if request.method == "HEAD" { set(jb_easy_setopt_long(handle, CURLOPT_NOBODY, 1)) }
        if let body = request.body {
            set(jb_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            // COPYPOSTFIELDS: curl keeps its own copy for the life of the transfer.
            body.withUnsafeBytes { raw in
                set(jb_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress)))
            }
        }
        guard code == CURLE_OK else {
            cleanup()
            throw CurlError(code: code)
        }
    }

    /// The outcome once curl reports the transfer finished with `result`.
    func finish(_ result: CURLcode) -> Result<CurlResponse, CurlError> {
        guard result == CURLE_OK else {
            return .failure(CurlError(code: result, limit: sink.overflowed ? limit : nil))
        }
        var status = 0
        _ = jb_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(CurlResponse(status: status, headers: sink.headers, body: sink.body))
    }

    func cleanup() {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        headerList = nil
        sinkPointer.release()
    }
}
