import Foundation
import Testing

@testable import BridgeApp

@Suite("Configuration: one key table for file, environment and options")
struct BridgeConfigurationTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jb-config-\(UUID().uuidString).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func optionsOverTheEnvironmentOverTheFileOverDefaults() throws {
        let path = try file(#"{"listen": "0.0.0.0:9000", "lease_seconds": 45, "runner_concurrency": 3}"#)
        let config = try BridgeConfiguration.load(
            configFile: path, environment: ["JOBYLON_BRIDGE_LEASE_SECONDS": "60", "JOBYLON_BRIDGE_LISTEN": "10.0.0.1:1"],
            options: ["listen": "127.0.0.1:0"])
        #expect(config.listen == "127.0.0.1:0")
        #expect(config.leaseSeconds == 60)
        #expect(config.runnerConcurrency == 3)
        #expect(config.maxConnections == 1024)
    }

    @Test func theConfigFileComesFromTheEnvironmentToo() throws {
        let path = try file(#"{"retention_days": 7}"#)
        #expect(try BridgeConfiguration.load(environment: ["JOBYLON_BRIDGE_CONFIG": path]).retentionDays == 7)
    }

    @Test func fileErrorsNameFileLineAndColumn() throws {
        let unknown = try file("{\n  \"listen\": \"127.0.0.1:1\",\n  \"lisen\": 1\n}")
        #expect {
            try BridgeConfiguration.load(configFile: unknown, environment: [:])
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.hasPrefix("\(unknown):3:3: unknown key \"lisen\"") && message.contains("known keys: allowed_companies")
        }
        let wrongType = try file("{\n  \"lease_seconds\": \"30\"\n}")
        #expect {
            try BridgeConfiguration.load(configFile: wrongType, environment: [:])
        } throws: { error in
            (error as? ConfigurationError)?.message == "\(wrongType):2:20: lease_seconds: expected a positive integer"
        }
    }

    @Test func environmentErrorsNameTheVariable() {
        #expect {
            try BridgeConfiguration.load(environment: ["JOBYLON_BRIDGE_RUNNER_CONCURRENCY": "many"])
        } throws: { error in
            (error as? ConfigurationError)?.message == "JOBYLON_BRIDGE_RUNNER_CONCURRENCY: must be a positive integer"
        }
        #expect {
            try BridgeConfiguration.load(environment: ["JOBYLON_BRIDGE_AUDIT_LOG": "perhaps"])
        } throws: { error in
            (error as? ConfigurationError)?.message.hasPrefix("JOBYLON_BRIDGE_AUDIT_LOG: must be true or false") == true
        }
    }

    @Test func tokensNeverComeFromTheFileOrTheCommandLine() throws {
        let path = try file(#"{"tokens": ["t"]}"#)
        #expect(throws: ConfigurationError.self) { try BridgeConfiguration.load(configFile: path, environment: [:]) }
        #expect(throws: ConfigurationError.self) { try BridgeConfiguration.load(environment: [:], options: ["retention_days": "3"]) }
        let config = try BridgeConfiguration.load(environment: ["JOBYLON_BRIDGE_TOKEN": " a , b,,"])
        #expect(config.tokens == ["a", "b"])
    }

    @Test func shortAliasesAreReadAfterTheLongNames() throws {
        let config = try BridgeConfiguration.load(environment: [
            "ARCHIVE_DIR": "/short", "JOBYLON_BRIDGE_ARCHIVE_DIR": "/long", "ARCHIVE_ALLOWED_HOSTS": "files.example.com, *.example.org",
        ])
        #expect(config.archiveDir == "/long")
        #expect(config.archiveAllowedHosts == ["files.example.com", "*.example.org"])
    }

    /// Every row of the table sets something: a key wired to no field (or to
    /// another key's field) shows as an unchanged or a doubly changed configuration.
    @Test func everyFileKeySetsItsOwnField() throws {
        let samples: [ConfigurationValueKind: String] = [
            .text: #""/x""#, .positiveInteger: "7", .flag: "true", .list: #"["a.example.com"]"#, .countsByName: #"{"cv": 9}"#,
        ]
        let baseline = String(reflecting: Mirror(reflecting: BridgeConfiguration()).children.map { "\($0.label ?? ""): \($0.value)" })
        var changed: [String: String] = [:]
        for key in BridgeConfiguration.keys {
            guard let name = key.file, let sample = samples[key.kind] else { continue }
            let path = try file("{\"\(name)\": \(sample)}")
            let config = try BridgeConfiguration.load(configFile: path, environment: [:])
            let fields = Mirror(reflecting: config).children.map { "\($0.label ?? ""): \($0.value)" }
            let before = Mirror(reflecting: BridgeConfiguration()).children.map { "\($0.label ?? ""): \($0.value)" }
            let differing = zip(fields, before).filter { $0 != $1 }.map(\.0)
            #expect(differing.count == 1, "\(name) changed \(differing)")
            if let field = differing.first { changed[field] = name }
        }
        #expect(!baseline.isEmpty)
        #expect(changed.count == BridgeConfiguration.fileKeys.count, "two keys set the same field")
    }

    @Test func docsConfigHoldsTheTableAsTheCodePrintsIt() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/CONFIG.md").standardized
        let text = try String(contentsOf: docs, encoding: .utf8)
        #expect(text.contains(BridgeConfiguration.markdownTable), "regenerate with: jobylon-bridge config keys")
    }
}
