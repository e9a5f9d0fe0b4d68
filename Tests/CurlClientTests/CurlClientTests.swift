import CurlClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TestServers
import Testing

/// Runs a real Hummingbird server on 127.0.0.1 with an ephemeral port for the
/// duration of `body`, with the routes `configure` adds.
func withLocalServer<T: Sendable>(
    _ configure: (Router<BasicRequestContext>) -> Void,
    _ body: @Sendable (_ baseURL: String) async throws -> T
) async throws -> T {
    let router = Router()
    configure(router)
    return try await withLocalHTTPServer(router, label: "test-server", body)
}

@Suite("CurlClient against a local server")
struct CurlClientTests {
    /// One engine per test (Swift Testing makes a suite instance per test); dropped with it.
    let client = CurlClient(engine: CurlEngine())

    @Test func getReturnsStatusHeadersAndBody() async throws {
        try await withLocalServer({ router in
            router.get("/hello") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/plain", .init("X-Test")!: "yes"],
                    body: .init(byteBuffer: ByteBuffer(string: "hej världen")))
            }
        }) { base in
            let response = try await client.perform(CurlRequest(url: base + "/hello"))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "hej världen")
            #expect(response.header("x-test") == "yes")
            #expect(response.header("Content-Type") == "text/plain")
        }
    }

    @Test func postSendsBodyAndHeaders() async throws {
        try await withLocalServer({ router in
            router.post("/echo") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let key = request.headers[.init("Idempotency-Key")!] ?? "none"
                return Response(status: .created, headers: [.init("X-Key")!: key], body: .init(byteBuffer: body))
            }
        }) { base in
            let payload = Array("{\"id\":1}".utf8)
            let response = try await client.perform(
                CurlRequest(
                    method: "POST", url: base + "/echo",
                    headers: [("Content-Type", "application/json"), ("Idempotency-Key", "c1:k1")], body: payload))
            #expect(response.status == 201)
            #expect(response.body == payload)
            #expect(response.header("X-Key") == "c1:k1")
        }
    }

    @Test func oversizedResponsesFailInsteadOfFillingMemory() async throws {
        try await withLocalServer({ router in
            router.get("/big") { _, _ in String(repeating: "x", count: 100_000) }
        }) { base in
            do throws(CurlError) {
                _ = try await client.perform(CurlRequest(url: base + "/big", maxResponseBytes: 1000))
                Issue.record("accepted an oversized body")
            } catch {
                #expect(error.kind == .responseTooLarge(limit: 1000))
            }
        }
    }

    @Test func refusedConnectionIsATypedErrorWithoutTheURL() async throws {
        // Bind and release a port so nothing listens there.
        let port = try await withLocalServer({ _ in }) { base in Int(base.split(separator: ":").last ?? "0") ?? 0 }
        let url = "http://127.0.0.1:\(port)/secret?token=abc"
        do throws(CurlError) {
            _ = try await client.perform(CurlRequest(url: url, connectTimeoutMilliseconds: 2000))
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.kind == .couldNotConnect)
            #expect(!error.description.contains("token"))
        }
    }

    @Test func environmentProxiesAreIgnored() async throws {
        try await withLocalServer({ router in
            router.get("/direct") { _, _ in "direct" }
        }) { base in
            // A proxy that does not exist: if curl used it, the request would fail.
            setenv("http_proxy", "http://127.0.0.1:9", 1)
            setenv("HTTP_PROXY", "http://127.0.0.1:9", 1)
            defer {
                unsetenv("http_proxy")
                unsetenv("HTTP_PROXY")
            }
            let response = try await client.perform(CurlRequest(url: base + "/direct"))
            #expect(String(decoding: response.body, as: UTF8.self) == "direct")
        }
    }

    @Test func onlyHTTPSchemesAreAllowed() async throws {
        do throws(CurlError) {
            _ = try await client.perform(CurlRequest(url: "file:///etc/passwd"))
            Issue.record("fetched a file: URL")
        } catch {
            #expect(error.kind == .unsupportedScheme)
        }
    }
}

@Suite("CurlClient concurrency on the multi interface")
struct CurlMultiTests {
    /// One engine per test (Swift Testing makes a suite instance per test); dropped with it.
    let client = CurlClient(engine: CurlEngine())

    @Test func manyTransfersInParallelAllCompleteOnce() async throws {
        try await withLocalServer({ router in
            router.get("/n/:n") { _, context -> String in
                try await Task.sleep(for: .milliseconds(20))
                return context.parameters.get("n") ?? "?"
            }
        }) { base in
            let bodies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for n in 0..<100 {
                    group.addTask {
                        let response = try await client.perform(CurlRequest(url: "\(base)/n/\(n)"))
                        return (n, String(decoding: response.body, as: UTF8.self))
                    }
                }
                return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
            }
            #expect(bodies.count == 100)
            #expect(bodies.allSatisfy { String($0.key) == $0.value })
        }
    }

    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        try await withLocalServer({ router in
            router.get("/slow") { _, _ -> String in
                try await Task.sleep(for: .seconds(2))
                return "late"
            }
        }) { base in
            let task = Task { try await client.perform(CurlRequest(url: base + "/slow")) }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            do {
                _ = try await task.value
                Issue.record("a cancelled transfer returned a response")
            } catch let error as CurlError {
                #expect(error.kind == .cancelled)
            }
        }
    }
}

@Suite("Curl engine lifetime")
struct CurlEngineTests {
    @Test func shutdownAbortsWhatIsInFlightStopsTheThreadAndRefusesLaterWork() async throws {
        try await withLocalServer({ router in
            router.get("/slow") { _, _ -> Response in
                try await Task.sleep(for: .seconds(3))
                return Response(status: .ok)
            }
        }) { base in
            let engine = CurlEngine()
            let client = CurlClient(engine: engine)
            @Sendable func outcome() async -> Result<CurlResponse, CurlError> {
                do throws(CurlError) {
                    return .success(try await client.perform(CurlRequest(url: base + "/slow")))
                } catch {
                    return .failure(error)
                }
            }
            async let slow = outcome()
            try await Task.sleep(for: .milliseconds(200))
            await engine.shutdown()
            #expect(engine.isStopped)
            guard case .failure(let error) = await slow else {
                Issue.record("the slow request finished although the engine stopped")
                return
            }
            #expect(error.kind == .cancelled)
            await #expect(throws: CurlError.self) { try await client.perform(CurlRequest(url: base + "/slow")) }
            await engine.shutdown()  // idempotent
        }
    }
}
