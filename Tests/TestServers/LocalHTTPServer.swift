import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Runs a Hummingbird app on 127.0.0.1 with an ephemeral port for the
/// duration of `body`, then shuts it down gracefully (also when `body` throws).
public func withLocalHTTPServer<T: Sendable>(
    _ router: Router<BasicRequestContext>, label: String, _ body: @Sendable (_ baseURL: String) async throws -> T
) async throws -> T {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        },
        logger: Logger(label: label))
    let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: label)))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        do {
            let result = try await body("http://127.0.0.1:\(port)")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// A JSON answer as the contract servers give it: `status`, `text` as the
/// body, `Content-Type: application/json` and any further `headers`.
public func jsonResponse(_ status: Int, _ text: String, headers: HTTPFields = [:]) -> Response {
    var all = headers
    all[.contentType] = "application/json"
    return Response(status: .init(code: status), headers: all, body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// The fields of an `application/x-www-form-urlencoded` body (an OAuth2
/// token request), percent-decoded with `+` as a space; a later field of the
/// same name wins.
public func formFields(_ body: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in body.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map {
            String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
        }
        fields[parts[0]] = parts.count > 1 ? parts[1] : ""
    }
    return fields
}

/// A vendor's rate limit as its contract servers count it: at most `limit`
/// requests in any `seconds` (a sliding window, so a test's burst cannot slip
/// through by straddling a calendar boundary).
public struct SlidingWindowLimit: Sendable {
    let seconds: TimeInterval
    var arrivals: [Date] = []

    public init(seconds: TimeInterval) {
        self.seconds = seconds
    }

    /// Counts a request arriving `now` and says whether it is within `limit`;
    /// a refused one is not counted.
    public mutating func admit(limit: Int, now: Date = Date()) -> Bool {
        arrivals.removeAll { now.timeIntervalSince($0) >= seconds }
        guard arrivals.count < limit else { return false }
        arrivals.append(now)
        return true
    }
}
