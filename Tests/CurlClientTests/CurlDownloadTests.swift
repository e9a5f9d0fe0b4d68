import CurlClient
import Foundation
import Hummingbird
import NIOCore
import Testing

@Suite("Streaming downloads through libcurl")
struct CurlDownloadTests {
    /// One engine per test (Swift Testing makes a suite instance per test); dropped with it.
    let client = CurlClient(engine: CurlEngine())

    /// Deterministic bytes so the test can check every one of them.
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 10)) }
    }

    @Test func aSlowConsumerPausesCurlAndStillGetsEveryByteInOrder() async throws {
        let body = CurlDownloadTests.pattern(24 << 20)
        try await withLocalServer({ router in
            router.get("/big") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
        }) { base in
            var request = CurlDownloadRequest(url: base + "/big", maxBytes: 64 << 20)
            request.bufferBytes = 256 << 10
            let download = client.download(request)
            let head = try await download.head()
            #expect(head.status == 200)
            #expect(head.header("content-type") == "application/octet-stream")
            var received: [UInt8] = []
            received.reserveCapacity(body.count)
            var largestBatch = 0
            while let chunks = try await download.nextChunks() {
                let batch = chunks.reduce(0) { $0 + $1.count }
                largestBatch = max(largestBatch, batch)
                for chunk in chunks { received.append(contentsOf: chunk) }
                try await Task.sleep(for: .milliseconds(2))  // slower than loopback
            }
            #expect(received == body)
            #expect(download.pauseCount > 0)
            // Memory stays bounded: never much more than the buffer between two reads.
            #expect(largestBatch <= (256 << 10) + (256 << 10))
        }
    }

    @Test func theAddressPolicyRefusesAtConnectTime() async throws {
        try await withLocalServer({ router in
            router.get("/file") { _, _ in "secret" }
        }) { base in
            var request = CurlDownloadRequest(url: base + "/file", maxBytes: 1024)
            request.addressPolicy = { bytes in bytes == [127, 0, 0, 1] ? "127.0.0.1 is loopback" : nil }
            let download = client.download(request)
            do throws(CurlError) {
                _ = try await download.head()
                Issue.record("the connection should have been refused")
            } catch {
                #expect(error.kind == .addressRefused)
                #expect(error.description.contains("127.0.0.1 is loopback"))
            }
        }
    }

    @Test func aBodyOverTheLimitFailsAsTooLarge() async throws {
        let body = CurlDownloadTests.pattern(300_000)
        try await withLocalServer({ router in
            router.get("/big") { _, _ -> Response in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: body))) }
        }) { base in
            let download = client.download(CurlDownloadRequest(url: base + "/big", maxBytes: 100_000))
            var failed: CurlError?
            do throws(CurlError) {
                while try await download.nextChunks() != nil {}
            } catch {
                failed = error
            }
            #expect(failed.map { if case .responseTooLarge = $0.kind { true } else { false } } == true)
        }
    }

    @Test func redirectsAreNotFollowedByCurl() async throws {
        try await withLocalServer({ router in
            router.get("/moved") { _, _ -> Response in Response(status: .found, headers: [.location: "/elsewhere"]) }
        }) { base in
            let download = client.download(CurlDownloadRequest(url: base + "/moved", maxBytes: 1024))
            let head = try await download.head()
            #expect(head.status == 302)
            #expect(head.header("Location") == "/elsewhere")
            download.cancel()
        }
    }
}
