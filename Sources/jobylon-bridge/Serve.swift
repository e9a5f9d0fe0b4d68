import ArgumentParser
import BridgeCore
import BridgeHTTP
import CSystemShim
import CurlClient
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import Runtime
import ServiceLifecycle
import UnixSignals
import Mapping
import StoreSQLite

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: webhook receiver, durable store, job runner, health and metrics.",
        discussion: """
            With no options it listens on 127.0.0.1:8080, keeps its data under ./var and reads mappings \
            from ./mappings. Webhook tokens come from JOBYLON_BRIDGE_TOKEN (comma-separated) or a token \
            file; on a loopback address with none configured, one is generated into the data directory. \
            SIGTERM or SIGINT stops it gracefully.
            """
    )

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT (port 0 picks a free port).", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Directory of mapping files.", valueName: "dir"))
    var mappings: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String?

    func run() async throws {
        umask(0o077)
        _ = jb_tune_allocator()
        var config = try BridgeConfiguration.load(options: store)
        if let listen { config.listen = listen }
        if let mappings { config.mappingsDir = mappings }
        if let logLevel { config.logLevel = logLevel }
        guard let address = ListenAddress(config.listen) else {
            throw ValidationError("listen address must be HOST:PORT with a port from 0 to 65535, got '\(config.listen)'")
        }
        guard let level = Logger.Level(rawValue: config.logLevel) else {
            throw ValidationError("log level must be one of trace, debug, info, notice, warning, error, critical")
        }
        var logger = Logger(label: "jobylon-bridge")
        logger.logLevel = level

        try DataDirectory.prepare(path: config.dataDir)
        let lock = try DaemonLock.acquire(dataDirectory: config.dataDir)
        defer { lock.release() }
        let tokens = try WebhookTokenSource.resolve(config: config, address: address, logger: logger)
        let variables = VariableSource(secretsDirectory: config.secretsDir, dataDirectory: config.dataDir)
        let (mappings, errors, _) = MappingLoader.load(directory: config.mappingsDir, variables: variables, strict: false) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        guard errors == 0 else {
            throw ValidationError("\(errors) error(s) in the mapping files of \(config.mappingsDir): not starting (see above; `jobylon-bridge check` lists them)")
        }
        for (name, missing) in mappings.held.sorted(by: { $0.key < $1.key }) {
            let reason = HoldReason.missingVariables(missing)
            logger.warning("mapping jobs will be held", metadata: ["mapping": "\(name)", "reason": "\(reason)"])
        }
        logger.info("mappings loaded", metadata: ["count": "\(mappings.mappings.count)", "directory": "\(config.mappingsDir)"])
        let mappingRegistry = MappingRegistry(mappings)
        Curl.initialize()

        var storeOptions = SQLiteStoreOptions()
        storeOptions.maxPageCount = config.sqliteMaxPages
        storeOptions.maxRunningPerMapping = config.mappingConcurrency
        let eventStore = try SQLiteStore(directory: config.dataDir, options: storeOptions, logger: logger)
        defer { eventStore.close() }
        let companies = CompanyDirectory(try eventStore.companies())
        var routers: [any EventRouter] = [
            MappingRouter(registry: mappingRegistry, companies: companies, executorKinds: ["log", "rest", "csv", "archive"]),
        ]
        if config.auditLog { routers.append(AuditLogRouter()) }
        let ready = mappings.mappings.map(\.name).filter { mappings.held[$0] == nil }
        let released = try await eventStore.releaseHeldJobs(mappings: ready, now: SystemWallClock().now())
        if released > 0 { logger.notice("held jobs released: their variables are now set", metadata: ["jobs": "\(released)"]) }
        let archiveLayout = ArchiveLayout(root: config.resolvedArchiveDir)
        let removedPartials = try archiveLayout.prepare()
        if removedPartials > 0 {
            logger.warning("archive: removed downloads a previous run left unfinished (their jobs run again)", metadata: ["files": "\(removedPartials)"])
        }
        let releasedArchive = try await eventStore.releaseJobsHeldForMissingExecutor(kinds: ["archive"], now: SystemWallClock().now())
        if releasedArchive > 0 { logger.notice("archive jobs released: this version archives files", metadata: ["jobs": "\(releasedArchive)"]) }
        if config.tlsInsecureSkipVerify {
            logger.critical("TLS VERIFICATION IS OFF for outbound requests (tls_insecure_skip_verify): personal data can be intercepted; never use this in production")
        }
        let recovered = try await eventStore.recoverJobsOfDeadRunners(now: SystemWallClock().now())
        if recovered.requeued + recovered.inDoubt > 0 {
            logger.warning("recovered jobs of a previous run", metadata: [
                "requeued": "\(recovered.requeued)", "in_doubt": "\(recovered.inDoubt)",
            ])
        }

        let registry = PrometheusCollectorRegistry()
        let metricsFactory = PrometheusMetricsFactory(registry: registry)
        let clock = SystemWallClock()
        var runnerConfiguration = JobRunnerConfiguration()
        runnerConfiguration.leaseDuration = .seconds(config.leaseSeconds)
        runnerConfiguration.concurrency = config.runnerConcurrency
        runnerConfiguration.lane = .dueTime
        var archiveConfiguration = ArchiveConfiguration(directory: config.resolvedArchiveDir)
        archiveConfiguration.allowedHosts = config.archiveAllowedHosts
        archiveConfiguration.retention = ArchiveRetention(defaultDays: config.archiveRetentionDays, daysByClass: config.archiveRetentionDaysByClass)
        archiveConfiguration.maxRetryDelay = .seconds(config.archiveMaxRetrySeconds)
        archiveConfiguration.downloader.caBundle = config.tlsCABundle
        archiveConfiguration.downloader.verifyPeer = !config.tlsInsecureSkipVerify
        archiveConfiguration.downloader.guardedPaths = [config.resolvedArchiveDir, config.dataDir]
        archiveConfiguration.downloader.freeSpaceFloorBytes = Int64(config.archiveFreeSpaceFloorMB) << 20
        let executors: [any JobExecutor] = [
            LogExecutor(),
            RestExecutor(registry: mappingRegistry, variables: variables, clock: clock,
                         tls: .init(caBundle: config.tlsCABundle, insecureSkipVerify: config.tlsInsecureSkipVerify,
                                    proxy: config.outboundProxy)),
            CSVExecutor(registry: mappingRegistry, store: eventStore, clock: clock),
            ArchiveExecutor(registry: mappingRegistry, store: eventStore, clock: clock, configuration: archiveConfiguration,
                            metricsFactory: metricsFactory),
        ]
        let owner = "\(ProcessInfo.processInfo.hostName):\(getpid())"
        let runner = JobRunner(
            store: eventStore, executors: executors, clock: clock, configuration: runnerConfiguration,
            owner: owner, logger: logger, metricsFactory: metricsFactory, pressure: eventStore)
        // Downloads race their URLs' expiry: their own lane, earliest deadline first,
        // `archive_parallel` transfers at once, never queued behind payroll calls.
        var archiveRunnerConfiguration = runnerConfiguration
        archiveRunnerConfiguration.concurrency = config.archiveParallel
        archiveRunnerConfiguration.lane = .earliestDeadline
        let archiveRunner = JobRunner(
            store: eventStore, executors: executors, clock: clock, configuration: archiveRunnerConfiguration,
            owner: owner + "/archive", logger: logger, metricsFactory: metricsFactory, pressure: eventStore)
        let wakeRunners: @Sendable () -> Void = {
            runner.wakeup.signal()
            archiveRunner.wakeup.signal()
        }
        eventStore.setJobsCommittedHandler(wakeRunners)
        let routing = EventRoutingService(queue: eventStore, router: CompositeRouter(routers), logger: logger, pressure: eventStore)
        eventStore.setEventsQueuedHandler { routing.wakeup.signal() }

        var receiverConfiguration = WebhookReceiverConfiguration()
        receiverConfiguration.maxBodyBytes = config.maxBodyBytes
        receiverConfiguration.allowedCompanies = config.allowedCompanies
        let receiver = WebhookReceiver(
            configuration: receiverConfiguration, tokens: WebhookTokens(tokens), store: eventStore,
            clock: clock, logger: logger, metricsFactory: metricsFactory)

        let addressFile = (config.dataDir as NSString).appendingPathComponent("listen-address")
        var serverConfiguration = BridgeServerConfiguration(host: address.host, port: address.port)
        serverConfiguration.maxConnections = config.maxConnections
        let app = BridgeServer.makeApplication(
            configuration: serverConfiguration,
            readiness: StoreReadiness(store: eventStore, dataDirectory: config.dataDir),
            receiver: receiver,
            metrics: registry,
            logger: logger,
            onListening: { [logger] host, port in
                // Written for operators and tests that start the daemon on port 0.
                try? "\(host):\(port)\n".write(toFile: addressFile, atomically: true, encoding: .utf8)
                logger.notice("listening", metadata: ["address": "\(host):\(port)"])
            }
        )
        let reloader = MappingReloader(
            directory: config.mappingsDir, variables: variables, registry: mappingRegistry, store: eventStore, clock: clock,
            wake: wakeRunners, logger: logger)
        let csvExports = CSVExportService(
            registry: mappingRegistry, exporter: CSVExporter(store: eventStore, variables: variables), clock: clock,
            owner: owner, logger: logger)
        let maintenance = StoreMaintenance(
            store: eventStore, clock: clock, retention: RetentionPolicy(inboxBodyDays: config.retentionDays, quarantineDays: config.retentionDays),
            walPolicy: WALPolicy(maxWALBytes: max(16, config.sqliteWALMaxMB) << 20),
            metricsFactory: metricsFactory, logger: logger)
        let archiveRetention = ArchiveRetentionService(
            purger: ArchivePurger(store: eventStore, layout: archiveLayout), clock: clock, logger: logger)
        // Shutdown runs in reverse order: the HTTP server stops accepting first,
        // then the runner finishes its attempts, then maintenance.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [reloader, maintenance, archiveRetention, csvExports, archiveRunner, runner, routing, app],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        logger.notice("stopped")
    }
}

/// Reloads the mapping files and the secrets directory on SIGHUP. A set with
/// errors is refused (the running one stays); jobs held for a variable that
/// the reload provides go back to the queue.
struct MappingReloader: Service {
    let directory: String
    let variables: VariableSource
    let registry: MappingRegistry
    let store: SQLiteStore
    let clock: any WallClock
    let wake: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        // Cancelled on graceful shutdown, which ends the signal sequence.
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                await reload()
            }
        }
    }

    func reload() async {
        let (mappings, errors, _) = MappingLoader.load(directory: directory, variables: variables, strict: false) { line in
            logger.error("mapping reload", metadata: ["diagnostic": "\(line)"])
        }
        guard errors == 0 else {
            logger.error("mapping reload refused: keeping the mappings in force", metadata: ["errors": "\(errors)"])
            return
        }
        registry.replace(with: mappings)
        let ready = mappings.mappings.map(\.name).filter { mappings.held[$0] == nil }
        let released = (try? await store.releaseHeldJobs(mappings: ready, now: clock.now())) ?? 0
        logger.notice("mappings reloaded", metadata: ["count": "\(mappings.mappings.count)", "released_jobs": "\(released)"])
        if released > 0 { wake() }
    }
}

/// Background upkeep of the embedded store: WAL checkpoints off the commit
/// path, the job gauges for `/metrics`, and retention of raw bodies.
struct StoreMaintenance: Service {
    let store: SQLiteStore
    let clock: any WallClock
    let retention: RetentionPolicy
    let walPolicy: WALPolicy
    let metricsFactory: any MetricsFactory
    let logger: Logger

    func run() async throws {
        let oldest = Metrics.Gauge(label: "jobylon_bridge_oldest_pending_job_seconds", factory: metricsFactory)
        try? await cancelWhenGracefulShutdown {
            var ticks = 0
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                await tick(oldest: oldest)
                if ticks % 600 == 0 { await purge() }
                ticks += 1
            }
        }
    }

    func purge() async {
        do {
            let purged = try await store.purgeExpiredBodies(now: clock.now(), policy: retention)
            if purged.inbox + purged.quarantine > 0 {
                logger.notice("retention: raw bodies deleted", metadata: ["inbox": "\(purged.inbox)", "quarantine": "\(purged.quarantine)"])
            }
        } catch {
            logger.warning("retention purge failed", metadata: ["error": "\(error)"])
        }
    }

    func tick(oldest: Metrics.Gauge) async {
            do {
                try await store.maintainWAL(policy: walPolicy)
                let stats = try await store.jobStatistics(now: clock.now())
                for state in JobState.allCases where !["done", "skipped", "cancelled"].contains(state.rawValue) {
                    Metrics.Gauge(label: "jobylon_bridge_jobs", dimensions: [("state", state.rawValue)], factory: metricsFactory)
                        .record(stats.counts[state.rawValue] ?? 0)
                }
                oldest.record(Double(stats.oldestPendingAge ?? 0) / 1000)
            } catch {
                logger.warning("store maintenance failed", metadata: ["error": "\(error)"])
            }
    }
}

/// `HOST:PORT`, with `[v6]:PORT` for IPv6 literals.
struct ListenAddress: Equatable {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

enum DataDirectory {
    /// Creates the directory 0700, or tightens an existing one to 0700: it holds personal data.
    static func prepare(path: String) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        guard chmod(path, 0o700) == 0 else {
            throw ValidationError("cannot set permissions 0700 on data directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// One daemon per SQLite store: an exclusive `flock` held for the process's life.
struct DaemonLock {
    let fd: Int32

    static func acquire(dataDirectory: String) throws -> DaemonLock {
        let path = (dataDirectory as NSString).appendingPathComponent("daemon.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ValidationError("another jobylon-bridge daemon already serves \(dataDirectory); one daemon per SQLite store (use PostgreSQL for several)")
        }
        return DaemonLock(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Where webhook tokens come from, and the one safe fallback.
enum WebhookTokenSource {
    static func resolve(config: BridgeConfiguration, address: ListenAddress, logger: Logger) throws -> [String] {
        let tokens = try config.resolvedTokens()
        if !tokens.isEmpty {
            logger.info("webhook tokens loaded", metadata: ["count": "\(tokens.count)"])
            return tokens
        }
        guard address.isLoopback else {
            // A silently regenerated token after a lost data dir would 401 every
            // webhook, and Jobylon drops them after ~18 minutes.
            throw ValidationError("""
                no webhook token configured and the listen address \(config.listen) is not loopback: \
                set JOBYLON_BRIDGE_TOKEN or token_file / JOBYLON_BRIDGE_TOKEN_FILE
                """)
        }
        let path = (config.dataDir as NSString).appendingPathComponent("webhook-token")
        if let existing = FileManager.default.contents(atPath: path) {
            let token = String(decoding: existing, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty {
                logger.notice("using the generated webhook token", metadata: ["file": "\(path)"])
                return [token]
            }
        }
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write generated token to \(path)")
        }
        logger.notice("no webhook token configured: generated one (loopback only)", metadata: ["file": "\(path)"])
        return [token]
    }
}
