import CCurlShim
import Foundation
import Synchronization

/// The async face of libcurl for the bridge.
///
/// Each `CurlEngine` has one thread that owns a curl multi handle and drives
/// every transfer of the clients made from it (connections are reused across
/// requests to the same host). Other threads only queue work under a lock and
/// call `curl_multi_wakeup`, the one multi call libcurl allows from another
/// thread; each continuation is resumed exactly once, by the curl thread.
///
/// A client is a cheap handle on a `CurlEngine`; the engine owns the thread.
/// There is no shared engine: whoever makes one shuts it down.
public struct CurlClient: Sendable {
    /// Keeps the engine alive as long as a client of it exists.
    let owner: CurlEngine
    var engine: CurlMultiEngine { owner.multi }

    /// Keeps `engine` alive but never shuts it down; that stays with whoever made it.
    public init(engine: CurlEngine) {
        self.owner = engine
    }

    /// Sends `request` and buffers the whole answer. Redirects are not followed
    /// (a 3XX comes back as the response) and every HTTP status is a response,
    /// not an error; only transport failures, the size cap, cancellation
    /// (`.cancelled`) and an engine already shut down throw.
    public func perform(_ request: CurlRequest) async throws(CurlError) -> CurlResponse {
        if Task.isCancelled { throw CurlError(code: CURLE_ABORTED_BY_CALLBACK) }
        let id = engine.nextID()
        let result: Result<CurlResponse, CurlError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                engine.submit(id: id, request: request, continuation: continuation)
            }
        } onCancel: {
            engine.cancel(id: id)
        }
        return try result.get()
    }
}

/// A transfer the engine drives: an easy handle plus whatever its callbacks
/// feed. Touched only on the curl thread.
protocol EngineTransfer: AnyObject {
    var handle: UnsafeMutableRawPointer { get }
    /// curl finished the transfer with `code`; called once, after the handle left the multi handle.
    func complete(_ code: CURLcode)
    /// The transfer was cancelled before curl finished it.
    func abort(_ error: CurlError)
    func cleanup()
}

/// The buffered request/response transfer behind `CurlClient.perform`.
final class BufferedTransfer: EngineTransfer {
    let transfer: EasyTransfer
    let continuation: CheckedContinuation<Result<CurlResponse, CurlError>, Never>

    init(_ request: CurlRequest, continuation: CheckedContinuation<Result<CurlResponse, CurlError>, Never>) throws(CurlError) {
        self.transfer = try EasyTransfer(request)
        self.continuation = continuation
    }

    var handle: UnsafeMutableRawPointer { transfer.handle }
    func complete(_ code: CURLcode) { continuation.resume(returning: transfer.finish(code)) }
    func abort(_ error: CurlError) { continuation.resume(returning: .failure(error)) }
    func cleanup() { transfer.cleanup() }
}

/// The thread and multi handle behind every `CurlClient` made from it.
///
/// The application makes one for the process and shuts it down after the
/// services that use it stopped; a test makes its own. `shutdown()` aborts
/// the transfers still in flight (their callers get a cancellation error),
/// stops the thread and waits for it, so nothing outlives its owner. An
/// engine that is dropped without `shutdown()` (its last client gone) stops
/// its thread too, without waiting for it.
public final class CurlEngine: Sendable {
    let multi: CurlMultiEngine

    /// Starts the curl thread; `maxHostConnections` caps parallel connections
    /// to one host.
    public init(maxHostConnections: Int = 16) {
        multi = CurlMultiEngine(maxHostConnections: maxHostConnections)
    }

    deinit {
        multi.requestStop()
    }

    /// True once the curl thread has ended (after `shutdown()`).
    public var isStopped: Bool { multi.isStopped }

    /// Aborts what is in flight, stops the thread and returns once it ended.
    /// Later requests fail at once with `CURLE_FAILED_INIT`. Idempotent.
    public func shutdown() async {
        await multi.stop()
    }

    /// Runs `body` with a fresh engine and shuts it down afterwards, also when `body` throws.
    public static func with<T>(_ body: (CurlClient) async throws -> T) async rethrows -> T {
        let engine = CurlEngine()
        do {
            let value = try await body(CurlClient(engine: engine))
            await engine.shutdown()
            return value
        } catch {
            await engine.shutdown()
            throw error
        }
    }
}

final class CurlMultiEngine: @unchecked Sendable {
    struct Submission {
        var id: UInt64
        /// Builds the transfer on the curl thread.
        var make: @Sendable () throws(CurlError) -> any EngineTransfer
        /// Reports a transfer that never started (setup failed, cancelled first).
        var fail: @Sendable (CurlError) -> Void
    }

    struct Queue {
        var submissions: [Submission] = []
        var cancellations: Set<UInt64> = []
        var unpauses: Set<UInt64> = []
        var counter: UInt64 = 0
        /// Set by `stop()`; the thread finishes its round and exits.
        var stopping = false
        var stopped = false
        /// Callers of `stop()` waiting for the thread to exit.
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let queue = Mutex(Queue())
    /// Owned by the curl thread, except `curl_multi_wakeup`, which is thread-safe.
    private let multi: UnsafeMutableRawPointer?
    /// Transfers in flight, by easy handle; touched only on the curl thread.
    private var active: [UnsafeMutableRawPointer: (id: UInt64, transfer: any EngineTransfer)] = [:]

    init(maxHostConnections: Int) {
        Curl.initialize()
        multi = curl_multi_init()
        if let multi {
            _ = jb_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxHostConnections)
        }
        let thread = Thread { [self] in run() }
        thread.name = "curl-multi"
        thread.start()
    }

    /// True once the thread has left its loop and freed the multi handle.
    var isStopped: Bool { queue.withLock { $0.stopped } }

    /// Asks the thread to stop without waiting for it.
    func requestStop() {
        let stopped = queue.withLock { state -> Bool in
            state.stopping = true
            return state.stopped
        }
        if !stopped { wake() }
    }

    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = queue.withLock { state -> Bool in
                if state.stopped { return true }
                state.stopping = true
                state.stopWaiters.append(continuation)
                return false
            }
            if done {
                continuation.resume()
            } else {
                wake()
            }
        }
    }

    /// Interrupts the curl thread's poll; a no-op once the handle is gone.
    private func wake() {
        guard let multi else { return }
        queue.withLock { state in
            if !state.stopped { curl_multi_wakeup(multi) }
        }
    }

    func nextID() -> UInt64 {
        queue.withLock { state in
            state.counter += 1
            return state.counter
        }
    }

    func submit(id: UInt64, request: CurlRequest, continuation: CheckedContinuation<Result<CurlResponse, CurlError>, Never>) {
        submit(
            Submission(
                id: id,
                make: { () throws(CurlError) in try BufferedTransfer(request, continuation: continuation) },
                fail: { continuation.resume(returning: .failure($0)) }))
    }

    func submit(_ submission: Submission) {
        guard multi != nil else {
            submission.fail(CurlError(code: CURLE_FAILED_INIT))
            return
        }
        let refusal = queue.withLock { state -> CURLcode? in
            if state.stopping || state.stopped { return CURLE_FAILED_INIT }
            if state.cancellations.remove(submission.id) != nil { return CURLE_ABORTED_BY_CALLBACK }
            state.submissions.append(submission)
            return nil
        }
        if let refusal {
            submission.fail(CurlError(code: refusal))
            return
        }
        wake()
    }

    func cancel(id: UInt64) {
        queue.withLock { _ = $0.cancellations.insert(id) }
        wake()
    }

    /// Resumes a transfer whose write callback paused it (its consumer caught up).
    func unpause(id: UInt64) {
        queue.withLock { _ = $0.unpauses.insert(id) }
        wake()
    }

    private func run() {
        guard let multi else {
            finishStopping()
            return
        }
        while true {
            let (submissions, cancellations, unpauses, stopping) = queue.withLock {
                state -> ([Submission], Set<UInt64>, Set<UInt64>, Bool) in
                defer {
                    state.submissions.removeAll()
                    state.cancellations.removeAll()
                    state.unpauses.removeAll()
                }
                return (state.submissions, state.cancellations, state.unpauses, state.stopping)
            }
            if stopping {
                for submission in submissions { submission.fail(CurlError(code: CURLE_ABORTED_BY_CALLBACK)) }
                for handle in Array(active.keys) {
                    remove(handle, multi: multi) { $0.abort(CurlError(code: CURLE_ABORTED_BY_CALLBACK)) }
                }
                finishStopping()
                return
            }
            for submission in submissions {
                do {
                    let transfer = try submission.make()
                    active[transfer.handle] = (submission.id, transfer)
                    curl_multi_add_handle(multi, transfer.handle)
                } catch {
                    submission.fail(error)
                }
            }
            if !cancellations.isEmpty {
                for (handle, entry) in active where cancellations.contains(entry.id) {
                    remove(handle, multi: multi) { $0.abort(CurlError(code: CURLE_ABORTED_BY_CALLBACK)) }
                }
            }
            if !unpauses.isEmpty {
                for (handle, entry) in active where unpauses.contains(entry.id) {
                    curl_easy_pause(handle, jb_pause_cont())
                }
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi, &remaining) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result
                remove(handle, multi: multi) { $0.complete(code) }
            }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
    }

    /// Marks the engine stopped and resumes every `stop()` caller.
    private func finishStopping() {
        let waiters = queue.withLock { state -> [CheckedContinuation<Void, Never>] in
            // Under the lock, so no `wake()` can touch the handle being freed.
            if let multi { curl_multi_cleanup(multi) }
            state.stopped = true
            defer { state.stopWaiters.removeAll() }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func remove(_ handle: UnsafeMutableRawPointer, multi: UnsafeMutableRawPointer, report: (any EngineTransfer) -> Void) {
        guard let entry = active.removeValue(forKey: handle) else { return }
        curl_multi_remove_handle(multi, handle)
        report(entry.transfer)
        entry.transfer.cleanup()
    }
}
