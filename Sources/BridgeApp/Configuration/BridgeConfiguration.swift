import FileArchive
import Foundation
import JSON

/// Everything the daemon and the CLI need to find and run a store.
///
/// Layers, lowest first: embedded defaults, the JSON config file, environment
/// variables (`JOBYLON_BRIDGE_*`), command-line options. Every key is named
/// once, in `BridgeConfiguration.keys`, which reads all three layers and
/// writes docs/CONFIG.md's table (`jobylon-bridge config keys`).
///
/// The file goes through the bridge's own JSON core so a typo is reported as
/// `file:line:column`; apple/swift-configuration was weighed and not taken:
/// its file providers report no positions, and its key-path model would still
/// need this table for the documentation and the environment names.
/// Tokens never come from the command line (they would show in `ps`).
public struct BridgeConfiguration: Sendable {
    /// Set by `listen` (see `keys`).
    public var listen = "127.0.0.1:8080"
    /// Set by `data_dir` (see `keys`).
    public var dataDir = "var"
    /// Set by `mappings_dir` (see `keys`).
    public var mappingsDir = "mappings"
    /// Set by `connectors` (see `keys`): connector packs under `<mappings_dir>/connectors/` loaded with the mappings.
    public var connectors: [String] = []
    /// Set by `token_file` (see `keys`).
    public var tokenFile: String?
    /// Set by `JOBYLON_BRIDGE_TOKEN` (see `keys`).
    public var tokens: [String] = []
    /// Set by `max_body_bytes` (see `keys`).
    public var maxBodyBytes = 1 << 20
    /// Set by `allowed_companies` (see `keys`).
    public var allowedCompanies: Set<String>?
    /// Set by `lease_seconds` (see `keys`).
    public var leaseSeconds = 30
    /// Set by `runner_concurrency` (see `keys`).
    public var runnerConcurrency = 32
    /// Set by `log_level` (see `keys`).
    public var logLevel = "info"
    /// Set by `sqlite_max_pages` (see `keys`).
    public var sqliteMaxPages: Int?
    /// Set by `sqlite_wal_max_mb` (see `keys`).
    public var sqliteWALMaxMB = 4096
    /// Set by `retention_days` (see `keys`).
    public var retentionDays = 30
    /// Set by `audit_log` (see `keys`).
    public var auditLog = false
    /// Set by `max_connections` (see `keys`).
    public var maxConnections = 1024
    /// Set by `mapping_concurrency` (see `keys`).
    public var mappingConcurrency = 8
    /// Set by `tls_ca_bundle` (see `keys`).
    public var tlsCABundle: String?
    /// Set by `tls_insecure_skip_verify` (see `keys`).
    public var tlsInsecureSkipVerify = false
    /// Set by `outbound_proxy` (see `keys`).
    public var outboundProxy: String?
    /// Set by `secrets_dir` (see `keys`).
    public var secretsDir: String?
    /// Default `<data_dir>/archive`.
    public var archiveDir: String?
    /// Set by `archive_allowed_hosts` (see `keys`).
    public var archiveAllowedHosts: [String] = []
    /// Set by `archive_parallel` (see `keys`).
    public var archiveParallel = 4
    /// Set by `archive_free_space_floor_mb` (see `keys`).
    public var archiveFreeSpaceFloorMB = 512
    /// Set by `archive_retention_days` (see `keys`).
    public var archiveRetentionDays = 365
    /// Set by `archive_retention_days_by_class` (see `keys`).
    public var archiveRetentionDaysByClass: [String: Int] = [:]
    /// Set by `archive_max_retry_seconds` (see `keys`).
    public var archiveMaxRetrySeconds = 300

    public init() {}

    /// The archive's root: `archive_dir`, else `<data_dir>/archive`.
    public var resolvedArchiveDir: String { archiveDir ?? (dataDir as NSString).appendingPathComponent("archive") }

    /// Reads the layers: `configFile` (or `JOBYLON_BRIDGE_CONFIG`), the
    /// environment, then `options` (file key → text, as typed on the command line).
    public static func load(
        configFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
        options: [String: String] = [:]
    ) throws(ConfigurationError) -> BridgeConfiguration {
        var config = BridgeConfiguration()
        if let file = configFile ?? environment["JOBYLON_BRIDGE_CONFIG"] {
            try config.apply(file: file)
        }
        try config.apply(environment: environment)
        try config.apply(options: options)
        for host in config.archiveAllowedHosts where HostPattern(host) == nil {
            throw ConfigurationError("archive_allowed_hosts: '\(host)' is not a host or *.domain pattern")
        }
        return config
    }

    /// The keys a config file may hold.
    public static var fileKeys: [String] { keys.compactMap(\.file) }

    mutating func apply(file: String) throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError("\(file): cannot read the config file")
        }
        let document: JSONDocument
        do {
            document = try JSONParser.parseDocument([UInt8](data), options: .mappingFile)
        } catch {
            throw ConfigurationError("\(file):\(error)")
        }
        guard case .object(let object) = document.value else {
            throw ConfigurationError("\(file):1:1: the config file must be a JSON object")
        }
        for member in object {
            guard let key = Self.keys.first(where: { $0.file == member.key }) else {
                let position = document.sourceMap?.keyPosition(of: JSONPointer(tokens: [member.key])).map { "\($0)" } ?? "1:1"
                throw ConfigurationError(
                    "\(file):\(position): unknown key \"\(member.key)\"; known keys: \(Self.fileKeys.sorted().joined(separator: ", "))")
            }
            do throws(ConfigurationError) {
                key.apply(&self, try key.kind.value(fromJSON: member.value))
            } catch {
                let position = document.sourceMap?.position(of: JSONPointer(tokens: [member.key])).map { "\($0)" } ?? "1:1"
                throw ConfigurationError("\(file):\(position): \(member.key): \(error.message)")
            }
        }
    }

    mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        for key in Self.keys {
            guard let (name, text) = key.environment.lazy.compactMap({ name in environment[name].map { (name, $0) } }).first else {
                continue
            }
            do throws(ConfigurationError) {
                key.apply(&self, try key.kind.value(fromText: text))
            } catch {
                throw ConfigurationError("\(name): \(error.message)")
            }
        }
    }

    mutating func apply(options: [String: String]) throws(ConfigurationError) {
        for (name, text) in options.sorted(by: { $0.key < $1.key }) {
            guard let key = Self.keys.first(where: { $0.file == name && $0.option != nil }), let option = key.option else {
                throw ConfigurationError("\(name) cannot be set by a command-line option")
            }
            do throws(ConfigurationError) {
                key.apply(&self, try key.kind.value(fromText: text))
            } catch {
                throw ConfigurationError("\(option.split(separator: " ").first ?? "option"): \(error.message)")
            }
        }
    }

    /// Tokens from the token file (one per line; `#` comments) are added to the environment's.
    public func resolvedTokens() throws(ConfigurationError) -> [String] {
        var all = tokens
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw ConfigurationError("cannot read token file \(tokenFile)")
            }
            all += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        return all
    }
}

/// A configuration that cannot be used, with the file position, variable or
/// key that says where. Start-up stops with it.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Says where (file:line:column, variable or option) and what is wrong; never a secret's value.
    public var message: String

    /// `message` as the operator will read it.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
