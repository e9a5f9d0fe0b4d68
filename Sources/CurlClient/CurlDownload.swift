import CCurlShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A streaming GET of a possibly large file. Nothing follows redirects here:
/// the caller sees the 3XX and decides (the archive re-checks every hop
/// against its allow-list).
public struct CurlDownloadRequest: Sendable {
    /// Sent byte-exact (a signed URL must not be re-encoded).
    public var url: String
    /// Extra request headers, sent in order as given (the archive sends none:
    /// the signature is in the URL).
    public var headers: [(name: String, value: String)] = []
    /// Bounds each connection phase; the body is bounded by the low-speed limit instead.
    public var connectTimeoutMilliseconds = 10_000
    /// 0: no overall limit (large files); stalls are caught by the low-speed limit.
    public var totalTimeoutMilliseconds = 0
    /// The transfer fails when slower than `lowSpeedBytesPerSecond` for `lowSpeedSeconds`.
    public var lowSpeedBytesPerSecond = 1024
    /// How long the transfer may stay below `lowSpeedBytesPerSecond` before it
    /// fails with `.timedOut`.
    public var lowSpeedSeconds = 60
    /// Bodies above this fail the transfer (by `Content-Length` before any byte, else while streaming).
    public var maxBytes: Int64
    /// Bytes held in memory before curl is paused (`CURL_WRITEFUNC_PAUSE`) until the consumer catches up.
    public var bufferBytes = 4 << 20
    /// A CA bundle file instead of the system's.
    public var caBundle: String?
    /// TLS peer and host verification; off only by an operator's explicit choice.
    public var verifyPeer = true
    /// Decides, for each address curl is about to connect to (after DNS, on
    /// the real socket address), whether the connection may be opened:
    /// `nil` allows, a string is the refusal reason.
    public var addressPolicy: (@Sendable (_ addressBytes: [UInt8]) -> String?)?

    /// The two values with no safe default: the URL, sent byte-exact, and the size cap.
    public init(url: String, maxBytes: Int64) {
        self.url = url
        self.maxBytes = maxBytes
    }
}

/// Status line and headers of a download's response.
public struct CurlResponseHead: Sendable {
    /// The first final (non-1XX) status; a 3XX is reported, never followed.
    public var status: Int
    /// Header lines of that response, in order, names as sent.
    public var headers: [(name: String, value: String)]

    /// Case-insensitive lookup of the first header with `name`.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}

/// A download in flight: the consumer awaits the head, then batches of
/// chunks, at its own pace; curl pauses while the consumer is behind.
public final class CurlDownload: Sendable {
    struct State {
        var head: CurlResponseHead?
        var chunks: [[UInt8]] = []
        var buffered = 0
        var paused = false
        /// How often curl was paused for a slow consumer (observability).
        var pauses = 0
        var finished: Result<Void, CurlError>?
        var waiter: CheckedContinuation<Void, Never>?
    }

    let id: UInt64
    let engine: CurlMultiEngine
    let state = Mutex(State())
    let bufferBytes: Int

    init(id: UInt64, engine: CurlMultiEngine, bufferBytes: Int) {
        self.id = id
        self.engine = engine
        self.bufferBytes = bufferBytes
    }

    /// The response's status and headers, once they arrived.
    public func head() async throws(CurlError) -> CurlResponseHead {
        await waitUntil { $0.head != nil || $0.finished != nil }
        let (head, finished) = state.withLock { ($0.head, $0.finished) }
        if let head { return head }
        if case .failure(let error) = finished { throw error }
        throw CurlError(code: CURLE_GOT_NOTHING)
    }

    /// The next batch of body bytes, in order; `nil` once the body is complete.
    /// Throws the transfer's error (after the bytes that came before it).
    public func nextChunks() async throws(CurlError) -> [[UInt8]]? {
        await waitUntil { !$0.chunks.isEmpty || $0.finished != nil }
        let (chunks, finished, resume) = state.withLock { state -> ([[UInt8]], Result<Void, CurlError>?, Bool) in
            let chunks = state.chunks
            state.chunks.removeAll(keepingCapacity: true)
            state.buffered = 0
            let resume = state.paused
            state.paused = false
            return (chunks, state.finished, resume)
        }
        if resume { engine.unpause(id: id) }
        if !chunks.isEmpty { return chunks }
        if case .failure(let error) = finished { throw error }
        return nil
    }

    /// How often the transfer was paused because the consumer was behind.
    public var pauseCount: Int { state.withLock { $0.pauses } }

    /// Stops the transfer; pending and later reads end with `cancelled`.
    public func cancel() {
        engine.cancel(id: id)
    }

    private func waitUntil(_ condition: @escaping @Sendable (State) -> Bool) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if condition(state) { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            cancel()
        }
    }

    // MARK: curl thread side

    /// Called with the lock released.
    private func wake(_ waiter: CheckedContinuation<Void, Never>?) {
        waiter?.resume()
    }

    func publish(head: CurlResponseHead) {
        wake(
            state.withLock { state in
                if state.head == nil { state.head = head }
                defer { state.waiter = nil }
                return state.waiter
            })
    }

    /// `false`: the buffer is full; the write callback pauses the transfer.
    func offer(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var accepted = true
        wake(
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.buffered >= bufferBytes {
                    state.paused = true
                    state.pauses += 1
                    accepted = false
                    return nil
                }
                state.chunks.append(Array(bytes))
                state.buffered += bytes.count
                defer { state.waiter = nil }
                return state.waiter
            })
        return accepted
    }

    func finish(_ result: Result<Void, CurlError>) {
        wake(
            state.withLock { state in
                if state.finished == nil { state.finished = result }
                defer { state.waiter = nil }
                return state.waiter
            })
    }
}

extension CurlClient {
    /// Starts a streaming download; read it with `head()` and `nextChunks()`.
    /// Never fails here: a transfer that cannot start reports it from `head()`.
    /// Cancel a download whose body is not read to the end; an unread buffer
    /// keeps curl paused.
    public func download(_ request: CurlDownloadRequest) -> CurlDownload {
        let id = engine.nextID()
        let download = CurlDownload(id: id, engine: engine, bufferBytes: request.bufferBytes)
        engine.submit(
            CurlMultiEngine.Submission(
                id: id,
                make: { () throws(CurlError) in try DownloadTransfer(request, download: download) },
                fail: { download.finish(.failure($0)) }))
        return download
    }
}

/// The curl-thread side of a download: callbacks feed the `CurlDownload`.
final class DownloadTransfer: EngineTransfer {
    let handle: UnsafeMutableRawPointer
    let download: CurlDownload
    let request: CurlDownloadRequest
    var headerList: UnsafeMutablePointer<curl_slist>?
    var selfPointer: Unmanaged<DownloadTransfer>?
    var headers: [(name: String, value: String)] = []
    var headPublished = false
    var received: Int64 = 0
    var overflowed = false
    var refusal: String?

    init(_ request: CurlDownloadRequest, download: CurlDownload) throws(CurlError) {
        Curl.initialize()
        guard let handle = curl_easy_init() else { throw CurlError(code: CURLE_FAILED_INIT) }
        self.handle = handle
        self.download = download
        self.request = request
        let pointer = Unmanaged.passRetained(self)
        selfPointer = pointer
        headerList = CurlOptions.headerList(request.headers)
        // Never through a proxy: the address policy must see the file server's own address.
        var code = CurlOptions.common(
            handle, url: request.url, proxy: nil, verifyPeer: request.verifyPeer, caBundle: request.caBundle,
            connectTimeoutMilliseconds: request.connectTimeoutMilliseconds)
        func set(_ result: CURLcode) {
            if code == CURLE_OK { code = result }
        }
        set(jb_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        if request.totalTimeoutMilliseconds > 0 { set(jb_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.totalTimeoutMilliseconds)) }
        set(jb_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, request.lowSpeedBytesPerSecond))
        set(jb_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, request.lowSpeedSeconds))
        set(jb_easy_setopt_off_t(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(request.maxBytes)))
        set(jb_easy_setopt_long(handle, CURLOPT_BUFFERSIZE, 256 << 10))
        if headerList != nil { set(jb_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)) }
        set(jb_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, downloadWrite))
        set(jb_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, pointer.toOpaque()))
        set(jb_easy_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, downloadHeader))
        set(jb_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, pointer.toOpaque()))
        if request.addressPolicy != nil {
            set(jb_easy_setopt_opensocket_callback(handle, downloadOpenSocket))
            set(jb_easy_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, pointer.toOpaque()))
        }
        guard code == CURLE_OK else {
            cleanup()
            throw CurlError(code: code)
        }
    }

    func publishHead() {
        guard !headPublished else { return }
        headPublished = true
        var status = 0
        _ = jb_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        download.publish(head: CurlResponseHead(status: status, headers: headers))
    }

    func complete(_ code: CURLcode) {
        if code == CURLE_OK {
            publishHead()
            download.finish(.success(()))
        } else if let refusal {
            download.finish(.failure(CurlError(refusedAddress: refusal)))
        } else if overflowed || code == CURLE_FILESIZE_EXCEEDED {
            download.finish(.failure(CurlError(code: CURLE_WRITE_ERROR, limit: Int(request.maxBytes))))
        } else {
            download.finish(.failure(CurlError(code: code)))
        }
    }

    func abort(_ error: CurlError) {
        download.finish(.failure(error))
    }

    func cleanup() {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        headerList = nil
        selfPointer?.release()
        selfPointer = nil
    }
}

private let downloadWrite: jb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<DownloadTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    transfer.publishHead()
    if transfer.received + Int64(length) > transfer.request.maxBytes {
        transfer.overflowed = true
        return 0
    }
    let accepted = buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.download.offer(UnsafeBufferPointer(start: $0, count: length))
    }
    // Paused: curl keeps these bytes and delivers them again once resumed.
    guard accepted else { return jb_writefunc_pause() }
    transfer.received += Int64(length)
    return length
}

private let downloadHeader: jb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<DownloadTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    switch HeaderLine(buffer, length: length) {
    case .statusLine:
        transfer.headers.removeAll()
    case .end:
        // End of a header block; an interim 1XX block is followed by the real one.
        var status = 0
        _ = jb_easy_getinfo_long(transfer.handle, CURLINFO_RESPONSE_CODE, &status)
        if status >= 200 { transfer.publishHead() }
    case .field(let name, let value):
        transfer.headers.append((name, value))
    case .other:
        break
    }
    return length
}

private let downloadOpenSocket: jb_curl_opensocket_callback = { userdata, _, address in
    guard let userdata, let address else { return -1 }
    let transfer = Unmanaged<DownloadTransfer>.fromOpaque(userdata).takeUnretainedValue()
    var bytes = [UInt8](repeating: 0, count: 16)
    let count = Int(jb_sockaddr_ip(address, &bytes))
    if let policy = transfer.request.addressPolicy {
        guard count == 4 || count == 16 else {
            transfer.refusal = "address family \(address.pointee.family) is not IP"
            return -1
        }
        if let reason = policy(Array(bytes.prefix(count))) {
            transfer.refusal = reason
            return -1  // CURL_SOCKET_BAD: curl reports "couldn't connect"
        }
    }
    return jb_open_socket(address)
}
