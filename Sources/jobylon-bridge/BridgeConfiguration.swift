import ArgumentParser
import BridgeCore
import Foundation
import JSON

/// Everything the daemon and the CLI need to find and run a store.
///
/// Layers, lowest first: embedded defaults, the JSON config file (`--config`),
/// environment variables (`JOBYLON_BRIDGE_*`), command-line options. The file
/// goes through the bridge's own JSON core so a typo is reported as
/// `file:line:column` (swift-configuration's providers report no positions).
/// Tokens never come from the command line (they would show in `ps`).
struct BridgeConfiguration {
    var listen = "127.0.0.1:8080"
    var dataDir = "var"
    var mappingsDir = "mappings"
    var tokenFile: String?
    var tokens: [String] = []
    var maxBodyBytes = 1 << 20
    var allowedCompanies: Set<String>?
    var leaseSeconds = 30
    var runnerConcurrency = 32
    var logLevel = "info"
    var sqliteMaxPages: Int?
    var sqliteWALMaxMB = 4096
    var retentionDays = 30
    var auditLog = false
    var maxConnections = 1024
    var mappingConcurrency = 8
    var tlsCABundle: String?
    var tlsInsecureSkipVerify = false
    var outboundProxy: String?
    var secretsDir: String?
    /// Default `<data_dir>/archive`.
    var archiveDir: String?
    var archiveAllowedHosts: [String] = []
    var archiveParallel = 4
    var archiveFreeSpaceFloorMB = 512
    var archiveRetentionDays = 365
    var archiveRetentionDaysByClass: [String: Int] = [:]
    var archiveMaxRetrySeconds = 300

    var resolvedArchiveDir: String { archiveDir ?? (dataDir as NSString).appendingPathComponent("archive") }

    static let keys: Set<String> = [
        "archive_dir", "archive_allowed_hosts", "archive_parallel", "archive_free_space_floor_mb", "archive_retention_days",
        "archive_retention_days_by_class", "archive_max_retry_seconds",
        "listen", "data_dir", "mappings_dir", "token_file", "max_body_bytes", "allowed_companies",
        "lease_seconds", "runner_concurrency", "log_level", "sqlite_max_pages", "sqlite_wal_max_mb", "retention_days", "audit_log", "secrets_dir", "max_connections", "mapping_concurrency", "tls_ca_bundle", "tls_insecure_skip_verify", "outbound_proxy",
    ]

    static func load(options: StoreOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BridgeConfiguration {
        var config = BridgeConfiguration()
        if let file = options.config ?? environment["JOBYLON_BRIDGE_CONFIG"] {
            try config.apply(file: file)
        }
        try config.apply(environment: environment)
        if let dataDir = options.dataDir { config.dataDir = dataDir }
        for host in config.archiveAllowedHosts where HostPattern(host) == nil {
            throw ValidationError("archive_allowed_hosts: '\(host)' is not a host or *.domain pattern")
        }
        return config
    }

    mutating func apply(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("\(file): cannot read the config file")
        }
        let document: JSONDocument
        do {
            document = try JSONParser.parseDocument([UInt8](data), options: .mappingFile)
        } catch {
            throw ValidationError("\(file):\(error)")
        }
        guard case .object(let object) = document.value else {
            throw ValidationError("\(file):1:1: the config file must be a JSON object")
        }
        func fail(_ key: String, _ message: String) -> ValidationError {
            let position = document.sourceMap?.position(of: JSONPointer(tokens: [key])).map { "\($0)" } ?? "1:1"
            return ValidationError("\(file):\(position): \(key): \(message)")
        }
        for member in object {
            let key = member.key
            let value = member.value
            guard Self.keys.contains(key) else {
                let position = document.sourceMap?.keyPosition(of: JSONPointer(tokens: [key])).map { "\($0)" } ?? "1:1"
                throw ValidationError("\(file):\(position): unknown key \"\(key)\"; known keys: \(Self.keys.sorted().joined(separator: ", "))")
            }
            func string() throws -> String {
                guard let s = value.stringValue else { throw fail(key, "expected a string") }
                return s
            }
            func int() throws -> Int {
                guard let n = value.numberValue?.int64Value, n > 0, let i = Int(exactly: n) else { throw fail(key, "expected a positive integer") }
                return i
            }
            switch key {
            case "listen": listen = try string()
            case "data_dir": dataDir = try string()
            case "mappings_dir": mappingsDir = try string()
            case "token_file": tokenFile = try string()
            case "max_body_bytes": maxBodyBytes = try int()
            case "lease_seconds": leaseSeconds = try int()
            case "runner_concurrency": runnerConcurrency = try int()
            case "log_level": logLevel = try string()
            case "sqlite_max_pages": sqliteMaxPages = try int()
            case "sqlite_wal_max_mb": sqliteWALMaxMB = try int()
            case "retention_days": retentionDays = try int()
            case "secrets_dir": secretsDir = try string()
            case "max_connections": maxConnections = try int()
            case "mapping_concurrency": mappingConcurrency = try int()
            case "tls_ca_bundle": tlsCABundle = try string()
            case "outbound_proxy": outboundProxy = try string()
            case "archive_dir": archiveDir = try string()
            case "archive_parallel": archiveParallel = try int()
            case "archive_free_space_floor_mb": archiveFreeSpaceFloorMB = try int()
            case "archive_retention_days": archiveRetentionDays = try int()
            case "archive_max_retry_seconds": archiveMaxRetrySeconds = try int()
            case "archive_allowed_hosts":
                guard let array = value.arrayValue, let hosts = Optional(array.compactMap(\.stringValue)), hosts.count == array.count else {
                    throw fail(key, "expected an array of host patterns")
                }
                archiveAllowedHosts = hosts
            case "archive_retention_days_by_class":
                guard case .object(let classes) = value else { throw fail(key, "expected an object of data class → days") }
                for member in classes {
                    guard let n = member.value.numberValue?.int64Value, n > 0, let days = Int(exactly: n) else {
                        throw fail(key, "\(member.key): expected a positive number of days")
                    }
                    archiveRetentionDaysByClass[member.key] = days
                }
            case "tls_insecure_skip_verify":
                guard let b = value.boolValue else { throw fail(key, "expected true or false") }
                tlsInsecureSkipVerify = b
            case "audit_log":
                guard let b = value.boolValue else { throw fail(key, "expected true or false") }
                auditLog = b
            case "allowed_companies":
                guard let array = value.arrayValue, let ids = Optional(array.compactMap(\.stringValue)), ids.count == array.count else {
                    throw fail(key, "expected an array of company ids")
                }
                allowedCompanies = Set(ids)
            default: break
            }
        }
    }

    mutating func apply(environment env: [String: String]) throws {
        func int(_ name: String) throws -> Int? {
            guard let text = env[name] else { return nil }
            guard let value = Int(text), value > 0 else { throw ValidationError("\(name) must be a positive integer") }
            return value
        }
        if let v = env["JOBYLON_BRIDGE_LISTEN"] { listen = v }
        if let v = env["JOBYLON_BRIDGE_DATA_DIR"] { dataDir = v }
        if let v = env["JOBYLON_BRIDGE_MAPPINGS"] { mappingsDir = v }
        if let v = env["JOBYLON_BRIDGE_TOKEN_FILE"] { tokenFile = v }
        if let v = env["JOBYLON_BRIDGE_SECRETS_DIR"] { secretsDir = v }
        if let v = env["JOBYLON_BRIDGE_AUDIT_LOG"] { auditLog = ["1", "true", "yes"].contains(v.lowercased()) }
        if let v = env["JOBYLON_BRIDGE_LOG_LEVEL"] { logLevel = v }
        if let v = try int("JOBYLON_BRIDGE_MAX_BODY_BYTES") { maxBodyBytes = v }
        if let v = try int("JOBYLON_BRIDGE_LEASE_SECONDS") { leaseSeconds = v }
        if let v = try int("JOBYLON_BRIDGE_RUNNER_CONCURRENCY") { runnerConcurrency = v }
        if let v = try int("JOBYLON_BRIDGE_SQLITE_MAX_PAGES") { sqliteMaxPages = v }
        if let v = try int("JOBYLON_BRIDGE_SQLITE_WAL_MAX_MB") { sqliteWALMaxMB = v }
        if let v = try int("JOBYLON_BRIDGE_RETENTION_DAYS") { retentionDays = v }
        if let v = try int("JOBYLON_BRIDGE_MAX_CONNECTIONS") { maxConnections = v }
        if let v = try int("JOBYLON_BRIDGE_MAPPING_CONCURRENCY") { mappingConcurrency = v }
        if let v = env["JOBYLON_BRIDGE_TLS_CA_BUNDLE"] { tlsCABundle = v }
        if let v = env["JOBYLON_BRIDGE_ARCHIVE_DIR"] ?? env["ARCHIVE_DIR"] { archiveDir = v }
        if let v = try int("JOBYLON_BRIDGE_ARCHIVE_PARALLEL") { archiveParallel = v }
        if let v = try int("JOBYLON_BRIDGE_ARCHIVE_FREE_SPACE_FLOOR_MB") { archiveFreeSpaceFloorMB = v }
        if let v = try int("JOBYLON_BRIDGE_ARCHIVE_RETENTION_DAYS") { archiveRetentionDays = v }
        if let v = try int("JOBYLON_BRIDGE_ARCHIVE_MAX_RETRY_SECONDS") { archiveMaxRetrySeconds = v }
        // ARCHIVE_ALLOWED_HOSTS is the short name the operator guide uses; both are read.
        if let v = env["JOBYLON_BRIDGE_ARCHIVE_ALLOWED_HOSTS"] ?? env["ARCHIVE_ALLOWED_HOSTS"] {
            archiveAllowedHosts = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = env["JOBYLON_BRIDGE_OUTBOUND_PROXY"] { outboundProxy = v }
        if let v = env["JOBYLON_BRIDGE_TLS_INSECURE_SKIP_VERIFY"] { tlsInsecureSkipVerify = ["1", "true", "yes"].contains(v.lowercased()) }
        if let v = env["JOBYLON_BRIDGE_ALLOWED_COMPANIES"] {
            allowedCompanies = Set(v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        if let v = env["JOBYLON_BRIDGE_TOKEN"] {
            tokens = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// Tokens from the token file (one per line; `#` comments) are added to the environment's.
    func resolvedTokens() throws -> [String] {
        var all = tokens
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw ValidationError("cannot read token file \(tokenFile)")
            }
            all += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        return all
    }
}

/// Options shared by every command that touches the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("JSON config file (keys in docs/CONFIG.md).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Data directory (default ./var).", valueName: "dir"))
    var dataDir: String?
}
