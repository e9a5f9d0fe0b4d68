import CurlClient
import Domain
import Foundation
import Hummingbird
import Logging
import Mapping
import Routing
import Synchronization
import TestServers
import Testing

@testable import BridgeApp

/// The composition root in-process: the same services `serve` runs, on port
/// 0 with a data directory of its own, against a real payroll endpoint on
/// 127.0.0.1, stopped by `shutdown()` instead of a signal.
@Suite("The application's service group, in-process")
struct BridgeApplicationTests {
    static let mapping = """
        {"name": "hire", "when": {"event": "candidate/new"}, "effect_key": "{{ company.id }}:{{ candidate.id }}",
         "rest": {"method": "POST", "url": "${PAYROLL_URL}/employees", "body": {"id": "{{ candidate.id }}"}, "success": [201]}}
        """

    struct Setup {
        var root: String
        var config: BridgeConfiguration
    }

    static func setup() throws -> Setup {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-app-\(UUID().uuidString)").path
        for folder in ["mappings", "secrets"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        try Data(mapping.utf8).write(to: URL(fileURLWithPath: root + "/mappings/hire.json"))
        var config = BridgeConfiguration()
        config.listen = "127.0.0.1:0"
        config.dataDir = root + "/data"
        config.mappingsDir = root + "/mappings"
        config.secretsDir = root + "/secrets"
        config.tokens = ["app-test-token"]
        return Setup(root: root, config: config)
    }

    static func listening(_ application: BridgeApplication) async throws -> String {
        for _ in 0..<2000 {
            if let text = try? String(contentsOfFile: application.addressFile, encoding: .utf8), text.hasSuffix("\n") {
                return "http://" + text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw CancellationError()
    }

    static func waitUntil(_ condition: () throws -> Bool) async throws -> Bool {
        for _ in 0..<2000 {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func aHireIsHeldForItsSecretThenDeliveredAfterAReloadReadsIt() async throws {
        let received = Mutex<[String]>([])
        let router = Router()
        router.post("/employees") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            received.withLock { $0.append(String(buffer: body)) }
            return Response(status: .created)
        }
        let s = try Self.setup()
        let application = try await BridgeApplication.start(configuration: s.config, logger: Logger(label: "test"), signals: [])
        try await withLocalHTTPServer(router, label: "payroll") { payroll in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await application.run() }
                let base = try await Self.listening(application)
                let curl = CurlClient(engine: CurlEngine())
                let body = Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"cand-1"}}}"#.utf8)
                let answer = try await curl.perform(
                    CurlRequest(
                        method: "POST", url: base + "/webhooks/jobylon",
                        headers: [("Authorization", "Bearer app-test-token"), ("Content-Type", "application/json")], body: body))
                #expect(answer.status == 200)
                // PAYROLL_URL is not set yet: the job waits for it, with the reason.
                #expect(try await Self.waitUntil { try application.store.jobs(state: "held").count == 1 })
                #expect(try application.store.jobs(state: "held").first?.lastError?.contains("PAYROLL_URL") == true)
                // A secret written now is not read until a reload (the snapshot).
                try Data((payroll + "\n").utf8).write(to: URL(fileURLWithPath: s.root + "/secrets/PAYROLL_URL"))
                try await Task.sleep(for: .milliseconds(200))
                #expect(try application.store.jobs(state: "held").count == 1)
                #expect(await application.reloadMappings())
                #expect(try await Self.waitUntil { try application.store.jobs(state: "done").count == 1 })
                #expect(received.withLock { $0 } == [#"{"id":"cand-1"}"#])
                await application.shutdown()
                try await group.waitForAll()
            }
        }
        // Everything it held is released: the store and the lock (a second
        // application starts on the same directory), and its threads.
        #expect(application.curl.isStopped)
        let again = try await BridgeApplication.start(configuration: s.config, logger: Logger(label: "test"), signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await again.run() }
            _ = try await Self.listening(again)
            await again.shutdown()
            try await group.waitForAll()
        }
    }

    @Test func aReloadWithAnErrorKeepsTheMappingsInForce() async throws {
        let s = try Self.setup()
        let application = try await BridgeApplication.start(configuration: s.config, logger: Logger(label: "test"), signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.run() }
            _ = try await Self.listening(application)
            try Data(#"{"name": "broken", "when": {"event": "candidate/new"}, "rest": {}}"#.utf8)
                .write(to: URL(fileURLWithPath: s.root + "/mappings/broken.json"))
            #expect(await application.reloadMappings() == false)
            #expect(application.registry.current.mappings.map(\.name) == ["hire"])
            try FileManager.default.removeItem(atPath: s.root + "/mappings/broken.json")
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: s.root + "/secrets/PAYROLL_URL"))
            #expect(await application.reloadMappings())
            #expect(application.registry.current.variables.value("PAYROLL_URL") == "x")
            await application.shutdown()
            try await group.waitForAll()
        }
    }

    @Test func aSecondApplicationOnTheSameDirectoryIsRefused() async throws {
        let s = try Self.setup()
        let first = try await BridgeApplication.start(configuration: s.config, logger: Logger(label: "test"), signals: [])
        await #expect(throws: ConfigurationError.self) {
            _ = try await BridgeApplication.start(configuration: s.config, logger: Logger(label: "test"), signals: [])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run() }
            await first.shutdown()
            try await group.waitForAll()
        }
    }

    @Test func serveAndReplayRouteTheSameWay() throws {
        var config = BridgeConfiguration()
        config.auditLog = true
        let set = MappingSet(mappings: [], variables: VariableSource(environment: [:]))
        let router = BridgeApplication.router(registry: MappingRegistry(set), companies: CompanyDirectory(), configuration: config)
        let body = Array(#"{"event_type":"candidate","action":"new","data":{"company":{"id":"c1"},"candidate":{"id":"x"}}}"#.utf8)
        let envelope = try WebhookEnvelope.read(body)
        #expect(router.route(envelope, body: body, receivedAt: .init(seconds: 0)).map(\.kind) == ["log"])
    }
}
