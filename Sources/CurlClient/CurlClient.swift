import CCurlShim
import Foundation
import Synchronization

/// The async face of libcurl for the bridge.
///
/// One thread owns a curl multi handle and drives every transfer of the
/// process (connections are reused across requests to the same host). Other
/// threads only queue work under a lock and call `curl_multi_wakeup`, the one
/// multi call libcurl allows from another thread; each continuation is resumed
/// exactly once, by the curl thread.
public struct CurlClient: Sendable {
    let engine: CurlMultiEngine

    public init() {
        self.engine = CurlMultiEngine.shared
    }

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

final class CurlMultiEngine: @unchecked Sendable {
    typealias Continuation = CheckedContinuation<Result<CurlResponse, CurlError>, Never>

    struct Submission {
        var id: UInt64
        var request: CurlRequest
        var continuation: Continuation
    }

    struct Queue {
        var submissions: [Submission] = []
        var cancellations: Set<UInt64> = []
        var counter: UInt64 = 0
    }

    /// The process-wide engine, started on first use.
    static let shared = CurlMultiEngine()

    private let queue = Mutex(Queue())
    /// Owned by the curl thread, except `curl_multi_wakeup`, which is thread-safe.
    private let multi: UnsafeMutableRawPointer?
    /// Transfers in flight, by easy handle; touched only on the curl thread.
    private var active: [UnsafeMutableRawPointer: (id: UInt64, transfer: EasyTransfer, continuation: Continuation)] = [:]

    private init() {
        Curl.initialize()
        multi = curl_multi_init()
        if let multi {
            _ = jb_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16)
        }
        let thread = Thread { [self] in run() }
        thread.name = "curl-multi"
        thread.start()
    }

    func nextID() -> UInt64 {
        queue.withLock { state in
            state.counter += 1
            return state.counter
        }
    }

    func submit(id: UInt64, request: CurlRequest, continuation: Continuation) {
        guard let multi else {
            continuation.resume(returning: .failure(CurlError(code: CURLE_FAILED_INIT)))
            return
        }
        let cancelled = queue.withLock { state -> Bool in
            if state.cancellations.remove(id) != nil { return true }
            state.submissions.append(Submission(id: id, request: request, continuation: continuation))
            return false
        }
        if cancelled {
            continuation.resume(returning: .failure(CurlError(code: CURLE_ABORTED_BY_CALLBACK)))
            return
        }
        curl_multi_wakeup(multi)
    }

    func cancel(id: UInt64) {
        queue.withLock { _ = $0.cancellations.insert(id) }
        if let multi { curl_multi_wakeup(multi) }
    }

    private func run() {
        guard let multi else { return }
        while true {
            let (submissions, cancellations) = queue.withLock { state -> ([Submission], Set<UInt64>) in
                defer {
                    state.submissions.removeAll()
                    state.cancellations.removeAll()
                }
                return (state.submissions, state.cancellations)
            }
            for submission in submissions {
                do {
                    let transfer = try EasyTransfer(submission.request)
                    active[transfer.handle] = (submission.id, transfer, submission.continuation)
                    curl_multi_add_handle(multi, transfer.handle)
                } catch {
                    submission.continuation.resume(returning: .failure(error))
                }
            }
            if !cancellations.isEmpty {
                for (handle, entry) in active where cancellations.contains(entry.id) {
                    complete(handle, result: .failure(CurlError(code: CURLE_ABORTED_BY_CALLBACK)), multi: multi)
                }
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi, &remaining) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle, let entry = active[handle] else { continue }
                let result = entry.transfer.finish(message.pointee.data.result)
                complete(handle, result: result, multi: multi)
            }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
    }

    private func complete(_ handle: UnsafeMutableRawPointer, result: Result<CurlResponse, CurlError>, multi: UnsafeMutableRawPointer) {
        guard let entry = active.removeValue(forKey: handle) else { return }
        curl_multi_remove_handle(multi, handle)
        entry.transfer.cleanup()
        entry.continuation.resume(returning: result)
    }
}
