import BridgeHTTP
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@Suite("Health endpoints on a live server")
struct HealthEndpointsTests {
    func makeApp(dataDir: String) -> some ApplicationProtocol {
        BridgeServer.makeApplication(
            configuration: BridgeServerConfiguration(host: "127.0.0.1", port: 0),
            readiness: DataDirectoryReadiness(path: dataDir),
            logger: Logger(label: "test")
        )
    }

    @Test func healthzAndReadyzWhenTheDataDirIsUsable() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jb-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await makeApp(dataDir: dir).test(.live) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"alive"}"#)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"data_dir":"ok","status":"ready"}"#)
            }
        }
    }

    @Test func readyzIs503WhenTheDataDirIsMissing() async throws {
        try await makeApp(dataDir: "/nonexistent/jobylon-bridge").test(.live) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("not ready"))
            }
        }
    }

    @Test func unknownPathsAre404() async throws {
        try await makeApp(dataDir: "/tmp").test(.live) { client in
            try await client.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }
}
