import Foundation

/// The async face of libcurl for the bridge.
///
/// At this stage each transfer runs on its own thread with a blocking easy
/// handle, so Swift's cooperative threads are never blocked by network I/O.
/// (The REST executor replaces this with one thread driving curl's multi
/// interface; the API stays the same.)
public struct CurlClient: Sendable {
    public init() {
        Curl.initialize()
    }

    public func perform(_ request: CurlRequest) async throws(CurlError) -> CurlResponse {
        let result: Result<CurlResponse, CurlError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                let outcome = Result { () throws(CurlError) in try CurlTransfer.perform(request) }
                continuation.resume(returning: outcome)
            }
            thread.name = "curl-transfer"
            thread.start()
        }
        return try result.get()
    }
}
