import JSON

/// One setting: its names in the file, the environment and on the command
/// line, how its value is read, and what it means. The table below is the
/// only place a key is written; docs/CONFIG.md's table is printed from it.
public struct ConfigurationKey: Sendable {
    /// The config file's key; `nil` for settings that must not sit in a file.
    public let file: String?
    /// Environment variables, first found wins (short aliases after the long name).
    public let environment: [String]
    /// The command-line option that sets it, as help shows it (`--listen HOST:PORT`).
    public let option: String?
    /// How each layer writes the value (and how it is checked).
    public let kind: ConfigurationValueKind
    /// The default as the documentation states it.
    public let defaultText: String
    /// What the setting does, for docs/CONFIG.md.
    public let meaning: String
    let apply: @Sendable (inout BridgeConfiguration, ConfigurationValue) -> Void
}

/// How a setting's value is written.
public enum ConfigurationValueKind: Sendable {
    case text
    case positiveInteger
    case flag
    /// A JSON array of strings, or a comma-separated list in the environment.
    case list
    /// A JSON object of name → positive integer (file only).
    case countsByName

    func value(fromJSON json: JSONValue) throws(ConfigurationError) -> ConfigurationValue {
        switch self {
        case .text:
            guard let text = json.stringValue else { throw ConfigurationError("expected a string") }
            return .text(text)
        case .positiveInteger:
            guard let n = json.numberValue?.int64Value, n > 0, let i = Int(exactly: n) else {
                throw ConfigurationError("expected a positive integer")
            }
            return .integer(i)
        case .flag:
            guard let flag = json.boolValue else { throw ConfigurationError("expected true or false") }
            return .flag(flag)
        case .list:
            guard let array = json.arrayValue else { throw ConfigurationError("expected an array of strings") }
            let items = array.compactMap(\.stringValue)
            guard items.count == array.count else { throw ConfigurationError("expected an array of strings") }
            return .list(items)
        case .countsByName:
            guard case .object(let object) = json else { throw ConfigurationError("expected an object of name → number") }
            var counts: [String: Int] = [:]
            for member in object {
                guard let n = member.value.numberValue?.int64Value, n > 0, let count = Int(exactly: n) else {
                    throw ConfigurationError("\(member.key): expected a positive number")
                }
                counts[member.key] = count
            }
            return .counts(counts)
        }
    }

    func value(fromText text: String) throws(ConfigurationError) -> ConfigurationValue {
        switch self {
        case .text:
            return .text(text)
        case .positiveInteger:
            guard let value = Int(text), value > 0 else { throw ConfigurationError("must be a positive integer") }
            return .integer(value)
        case .flag:
            switch text.lowercased() {
            case "1", "true", "yes": return .flag(true)
            case "0", "false", "no", "": return .flag(false)
            default: throw ConfigurationError("must be true or false (1/0, yes/no)")
            }
        case .list:
            return .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        case .countsByName:
            throw ConfigurationError("can only be set in the config file")
        }
    }

    var documentation: String {
        switch self {
        case .text: return "text"
        case .positiveInteger: return "positive integer"
        case .flag: return "`true`/`false`"
        case .list: return "list (comma-separated in the environment)"
        case .countsByName: return "object of name → number"
        }
    }
}

/// A value read from one layer, already checked against its key's kind.
public enum ConfigurationValue: Sendable {
    case text(String)
    case integer(Int)
    case flag(Bool)
    case list([String])
    case counts([String: Int])

    var text: String {
        if case .text(let value) = self { return value }
        return ""
    }

    var integer: Int {
        if case .integer(let value) = self { return value }
        return 0
    }

    var flag: Bool {
        if case .flag(let value) = self { return value }
        return false
    }

    var list: [String] {
        if case .list(let value) = self { return value }
        return []
    }

    var counts: [String: Int] {
        if case .counts(let value) = self { return value }
        return [:]
    }
}

extension BridgeConfiguration {
    private static func key(
        _ file: String?, env: [String], option: String? = nil, _ kind: ConfigurationValueKind, default defaultText: String,
        _ meaning: String, apply: @escaping @Sendable (inout BridgeConfiguration, ConfigurationValue) -> Void
    ) -> ConfigurationKey {
        ConfigurationKey(
            file: file, environment: env, option: option, kind: kind, defaultText: defaultText, meaning: meaning, apply: apply)
    }

    /// Every setting, in the order docs/CONFIG.md lists them.
    public static let keys: [ConfigurationKey] = [
        key(
            "listen", env: ["JOBYLON_BRIDGE_LISTEN"], option: "--listen HOST:PORT", .text, default: "`127.0.0.1:8080`",
            "Address of the HTTP server. Port 0 picks a free port (the bound address is written to `<data_dir>/listen-address`)."
        ) { $0.listen = $1.text },
        key(
            "data_dir", env: ["JOBYLON_BRIDGE_DATA_DIR"], option: "--data-dir DIR", .text, default: "`./var`",
            "Store, generated token, lock file. Created 0700; the process runs with umask 077 so every file is 0600."
        ) { $0.dataDir = $1.text },
        key(
            "mappings_dir", env: ["JOBYLON_BRIDGE_MAPPINGS"], option: "--mappings DIR", .text, default: "`./mappings`",
            "Mapping files (docs/MAPPINGS.md)."
        ) { $0.mappingsDir = $1.text },
        key(
            "connectors", env: ["JOBYLON_BRIDGE_CONNECTORS"], .list, default: "none",
            "Connector packs loaded beside the mappings, comma-separated: `fortnox` loads `<mappings_dir>/connectors/fortnox/*.json` (docs/CONNECTORS.md)."
        ) { $0.connectors = $1.list },
        key(
            nil, env: ["JOBYLON_BRIDGE_TOKEN"], .list, default: "—",
            "Webhook bearer tokens, comma-separated; several for rotation. Never on the command line (it would show in `ps`) nor in the config file."
        ) { $0.tokens = $1.list },
        key(
            "token_file", env: ["JOBYLON_BRIDGE_TOKEN_FILE"], .text, default: "—",
            "File with one token per line (`#` comments); added to the environment's tokens."
        ) { $0.tokenFile = $1.text },
        key(
            "max_body_bytes", env: ["JOBYLON_BRIDGE_MAX_BODY_BYTES"], .positiveInteger, default: "`1048576`",
            "Larger bodies get 413, before reading (Content-Length) and after inflating gzip."
        ) { $0.maxBodyBytes = $1.integer },
        key(
            "allowed_companies", env: ["JOBYLON_BRIDGE_ALLOWED_COMPANIES"], .list, default: "all",
            "Events of other companies are stored but parked (not routed) and counted."
        ) { $0.allowedCompanies = Set($1.list) },
        key(
            "lease_seconds", env: ["JOBYLON_BRIDGE_LEASE_SECONDS"], .positiveInteger, default: "`30`",
            "A running job's lease; renewed every third of it while the attempt runs."
        ) { $0.leaseSeconds = $1.integer },
        key(
            "runner_concurrency", env: ["JOBYLON_BRIDGE_RUNNER_CONCURRENCY"], .positiveInteger, default: "`32`",
            "Jobs run at once by this daemon."
        ) { $0.runnerConcurrency = $1.integer },
        key(
            "mapping_concurrency", env: ["JOBYLON_BRIDGE_MAPPING_CONCURRENCY"], .positiveInteger, default: "`8`",
            "Jobs of one mapping running at once: a slow or hanging endpoint never takes all of the runner's slots, so other mappings keep flowing."
        ) { $0.mappingConcurrency = $1.integer },
        key(
            "tls_ca_bundle", env: ["JOBYLON_BRIDGE_TLS_CA_BUNDLE"], .text, default: "system",
            "CA bundle file for outbound HTTPS (payroll, Jobylon)."
        ) { $0.tlsCABundle = $1.text },
        key(
            "tls_insecure_skip_verify", env: ["JOBYLON_BRIDGE_TLS_INSECURE_SKIP_VERIFY"], .flag, default: "`false`",
            "Turns certificate verification off for outbound requests; logged as critical at every start. For test systems only."
        ) { $0.tlsInsecureSkipVerify = $1.flag },
        key(
            "outbound_proxy", env: ["JOBYLON_BRIDGE_OUTBOUND_PROXY"], .text, default: "none",
            "Proxy for outbound requests. The usual `http_proxy`/`https_proxy` environment variables are ignored on purpose: personal data goes through a proxy only when configured here."
        ) { $0.outboundProxy = $1.text },
        key(
            "retention_days", env: ["JOBYLON_BRIDGE_RETENTION_DAYS"], .positiveInteger, default: "`30`",
            "Raw bodies are deleted this many days after all their jobs ended (quarantine: after arrival); ended jobs' rendered requests and captures are cleared and staged CSV rows of periods exported that long ago are deleted. Hashes and job rows stay as a trail, without personal data."
        ) { $0.retentionDays = $1.integer },
        key(
            "sqlite_max_pages", env: ["JOBYLON_BRIDGE_SQLITE_MAX_PAGES"], .positiveInteger, default: "unlimited",
            "Caps the SQLite file (`max_page_count`, 4 KiB pages): the store refuses (503) instead of filling a shared volume."
        ) { $0.sqliteMaxPages = $1.integer },
        key(
            "sqlite_wal_max_mb", env: ["JOBYLON_BRIDGE_SQLITE_WAL_MAX_MB"], .positiveInteger, default: "`4096`",
            "Bounds the SQLite WAL under sustained load (minimum 16). Checkpoints run in the background; a WAL that keeps receiving commits without a quiet moment never empties that way, so past this size the background checkpoint also flushes the database file and the writer finishes the checkpoint between two commits (a pause, see docs/BENCHMARKS.md) and the WAL starts over; its file keeps its size and is reused."
        ) { $0.sqliteWALMaxMB = $1.integer },
        key(
            "max_connections", env: ["JOBYLON_BRIDGE_MAX_CONNECTIONS"], .positiveInteger, default: "`1024`",
            "Connections served at once; more wait in the listen backlog. Header fields are limited to 16 KiB, all headers to 64 KiB and 100 fields; idle connections close after 60 s."
        ) { $0.maxConnections = $1.integer },
        key(
            "audit_log", env: ["JOBYLON_BRIDGE_AUDIT_LOG"], .flag, default: "`false`",
            "Adds the built-in audit-log route: one `log` job per documented event that logs its ids."
        ) { $0.auditLog = $1.flag },
        key(
            "secrets_dir", env: ["JOBYLON_BRIDGE_SECRETS_DIR"], .text, default: "—",
            "Directory with one file per mapping variable (e.g. `PAYROLL_TOKEN`), read at start-up and on SIGHUP, never per request."
        ) { $0.secretsDir = $1.text },
        key(
            "log_level", env: ["JOBYLON_BRIDGE_LOG_LEVEL"], option: "--log-level LEVEL", .text, default: "`info`",
            "trace, debug, info, notice, warning, error, critical."
        ) { $0.logLevel = $1.text },
        key(
            "archive_dir", env: ["JOBYLON_BRIDGE_ARCHIVE_DIR", "ARCHIVE_DIR"], .text, default: "`<data_dir>/archive`",
            "Root of the CV archive (0700; files 0600). Downloads in progress live in `<archive_dir>/.partial` (same volume: placing a file is a rename); a start deletes what a killed process left there."
        ) { $0.archiveDir = $1.text },
        key(
            "archive_allowed_hosts", env: ["JOBYLON_BRIDGE_ARCHIVE_ALLOWED_HOSTS", "ARCHIVE_ALLOWED_HOSTS"], .list, default: "none",
            "Host patterns (`files.example.com`, `*.example.com`) added to the built-in `jobylon.com`, `*.jobylon.com`, `*.amazonaws.com` and the mapping's `allowed_hosts`. A host listed here **exactly** (no wildcard) may also use plain http and resolve to loopback/private addresses (an on-premises store); everything else is https-only and must resolve to public addresses."
        ) { $0.archiveAllowedHosts = $1.list },
        key(
            "archive_parallel", env: ["JOBYLON_BRIDGE_ARCHIVE_PARALLEL"], .positiveInteger, default: "`4`",
            "Downloads at once (their own runner lane, earliest deadline first)."
        ) { $0.archiveParallel = $1.integer },
        key(
            "archive_free_space_floor_mb", env: ["JOBYLON_BRIDGE_ARCHIVE_FREE_SPACE_FLOOR_MB"], .positiveInteger, default: "`512`",
            "Downloads wait (retried each minute, before their deadline) while the archive's or the store's volume would fall below this many MiB free. Checked before a download, against `Content-Length`, and every 64 MiB while streaming."
        ) { $0.archiveFreeSpaceFloorMB = $1.integer },
        key(
            "archive_retention_days", env: ["JOBYLON_BRIDGE_ARCHIVE_RETENTION_DAYS"], .positiveInteger, default: "`365`",
            "How long archived files are kept after download; purged hourly (file, sidecar, record)."
        ) { $0.archiveRetentionDays = $1.integer },
        key(
            "archive_retention_days_by_class", env: [], .countsByName, default: "none",
            "Per data class, e.g. `{\"cv\": 730, \"answer\": 90}` (class = the file kind without its index: `other-2` → `other`). A mapping's `retention_days` can only shorten it."
        ) { $0.archiveRetentionDaysByClass = $1.counts },
        key(
            "archive_max_retry_seconds", env: ["JOBYLON_BRIDGE_ARCHIVE_MAX_RETRY_SECONDS"], .positiveInteger, default: "`300`",
            "Longest wait between download attempts; attempts never go past the URL's deadline."
        ) { $0.archiveMaxRetrySeconds = $1.integer },
    ]

    /// docs/CONFIG.md's table, printed from `keys`.
    public static var markdownTable: String {
        func code(_ names: [String]) -> String { names.isEmpty ? "—" : names.map { "`\($0)`" }.joined(separator: " or ") }
        var lines = ["| file key | environment | option | kind | default | meaning |", "|---|---|---|---|---|---|"]
        for key in keys {
            let cells = [
                key.file.map { "`\($0)`" } ?? "—", code(key.environment), key.option.map { "`\($0)`" } ?? "—",
                key.kind.documentation, key.defaultText, key.meaning,
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
