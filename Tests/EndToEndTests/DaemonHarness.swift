import CurlClient
import Foundation
import GRDB

/// Starts the real `jobylon-bridge` binary on an ephemeral port with its own
/// data directory, and talks to it over HTTP through libcurl.
final class Daemon: @unchecked Sendable {
    let dataDir: String
    let environment: [String: String]
    private(set) var process: Process?
    private(set) var baseURL = ""
    let logPath: String
    /// This harness's own curl thread, stopped when the harness goes.
    let curl = CurlClient(engine: CurlEngine())
    static let token = "e2e-token-\(UInt32.random(in: 0...UInt32.max))"

    init(dataDir: String? = nil, environment: [String: String] = [:]) {
        self.dataDir = dataDir ?? Daemon.temporaryDirectory()
        var env = ProcessInfo.processInfo.environment
        env["JOBYLON_BRIDGE_TOKEN"] = Daemon.token
        // The built-in audit log gives every documented event one job, so these
        // tests see the queue and ledger without depending on the bundled mappings.
        env["JOBYLON_BRIDGE_AUDIT_LOG"] = "1"
        env["JOBYLON_BRIDGE_MAPPINGS"] = Daemon.emptyMappingsDirectory
        for (key, value) in environment { env[key] = value }
        self.environment = env
        self.logPath = self.dataDir + ".log"
    }

    static let emptyMappingsDirectory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jb-e2e-mappings-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jb-e2e-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/data"
    }

    static var binary: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundleURL.deletingLastPathComponent().path,
            FileManager.default.currentDirectoryPath + "/.build/debug",
        ]
        for dir in candidates where FileManager.default.isExecutableFile(atPath: dir + "/jobylon-bridge") {
            return dir + "/jobylon-bridge"
        }
        return ".build/debug/jobylon-bridge"
    }

    /// Runs the daemon and waits until it listens (it writes `listen-address`).
    func start(arguments: [String] = []) throws {
        let addressFile = dataDir + "/listen-address"
        try? FileManager.default.removeItem(atPath: addressFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Daemon.binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warning"] + arguments
        process.environment = environment
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: logPath)
        logHandle?.seekToEndOfFile()
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: addressFile, encoding: .utf8), text.hasSuffix("\n") {
                baseURL = "http://" + text.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            if !process.isRunning { throw HarnessError.exited(status: process.terminationStatus, log: log(tail: 2000)) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw HarnessError.notListening(log: log(tail: 2000))
    }

    func log(tail: Int) -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "" }
        return String(decoding: data.suffix(tail), as: UTF8.self)
    }

    /// SIGTERM and wait: the graceful path.
    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// SIGKILL: no chance to flush anything.
    func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        kill9()
    }

    func post(_ body: [UInt8], token: String? = Daemon.token, headers: [(name: String, value: String)] = []) async throws -> CurlResponse {
        var all = headers
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        all.append(("Content-Type", "application/json"))
        return try await curl.perform(CurlRequest(method: "POST", url: baseURL + "/webhooks/jobylon", headers: all, body: body))
    }

    func get(_ path: String) async throws -> CurlResponse {
        try await curl.perform(CurlRequest(url: baseURL + path))
    }

    /// Runs `jobylon-bridge ARGS` against this daemon's data directory, as an operator would beside it.
    func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Daemon.command(arguments + ["--data-dir", dataDir], environment: environment)
    }

    /// `cli` on a thread of its own: for commands that talk to a test server in
    /// this process (`oauth authorize`), whose handlers need the cooperative
    /// threads a blocking wait would hold (two such waits on two cores deadlock
    /// until curl's timeout).
    func cliOffPool(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let all = arguments + ["--data-dir", dataDir]
        let environment = environment
        return try await Daemon.offPool { try Daemon.command(all, environment: environment) }
    }

    /// Runs `body` on a new thread and waits for it without holding a cooperative thread.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs `jobylon-bridge ARGS` with `environment`, stdout and stderr together.
    static func command(_ arguments: [String], environment: [String: String], directory: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Daemon.binary)
        process.arguments = arguments
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A separate read-only connection to the daemon's store, as an auditor would open it.
    func database() throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = true
        return try DatabaseQueue(path: dataDir + "/bridge.sqlite", configuration: config)
    }

    /// A synchronous read of the store.
    func query<T>(_ body: (Database) throws -> T) throws -> T {
        try database().read(body)
    }

    /// Waits until every acknowledged event has its jobs (routing follows the commit).
    func routed(timeout: TimeInterval = 20) async throws {
        let done = try await waitFor(timeout: timeout) { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM route_queue") == 0 }
        if !done { throw HarnessError.notRouted(log: log(tail: 2000)) }
    }

    /// Waits until `condition` holds on the store (jobs run asynchronously).
    func waitFor(timeout: TimeInterval = 20, _ condition: (Database) throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try query(condition) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case exited(status: Int32, log: String)
    case notListening(log: String)
    case notRouted(log: String)

    var description: String {
        switch self {
        case .notRouted(let log): return "events were not routed in time:\n\(log)"
        case .exited(let status, let log): return "daemon exited with \(status):\n\(log)"
        case .notListening(let log): return "daemon did not listen:\n\(log)"
        }
    }
}

enum Fixtures {
    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return Array(try Data(contentsOf: url))
    }

    /// The candidate example with a different candidate id (and so a different body).
    static func candidate(id: String, extra: String = "") throws -> [UInt8] {
        let text = String(decoding: try bytes("candidate-new"), as: UTF8.self)
            .replacingOccurrences(of: "aed6532d-2438-4e33-b15b-1f1a20ba1c16", with: id)
            .replacingOccurrences(of: "Please, don't call me before 5pm", with: "Please, don't call me before 5pm\(extra)")
        return Array(text.utf8)
    }
}

extension CurlResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
}
