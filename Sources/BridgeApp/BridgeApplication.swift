import BridgeHTTP
import CSVExport
import CSystemShim
import Clocks
import CurlClient
import Domain
import DurableFiles
import FileArchive
import Foundation
import JobEngine
import Logging
import Mapping
import Metrics
import Prometheus
import RESTDelivery
import Routing
import ServiceLifecycle
import StoreSQLite
import UnixSignals

/// The composition root: builds the store, router, runners, executors,
/// export, retention, reloader and HTTP server from one configuration, and
/// runs them as one `ServiceGroup`.
///
/// `serve` is `BridgeApplication.start(...)` then `run()`; tests do the same
/// in-process on port 0 and stop it with `shutdown()`.
public final class BridgeApplication: Sendable {
    /// The executor kinds this build runs; jobs of other kinds are held.
    public static let executorKinds: Set<String> = ["log", "rest", "flow", "csv", "archive"]

    /// The configuration the services were built from.
    public let configuration: BridgeConfiguration
    /// Every service, in start order; shutdown runs in reverse.
    public let serviceGroup: ServiceGroup
    /// Where the daemon listens once the server is up (port 0 resolved), written by the server.
    public let addressFile: String
    let store: SQLiteStore
    let registry: MappingRegistry
    let reloader: MappingReloader
    let lock: DaemonLock
    let curl: CurlEngine
    let io: BlockingIOPool
    let logger: Logger

    /// The variables snapshot for `configuration`: the environment, the
    /// secrets directory as it is now, `DATA_DIR`.
    public static func variables(for configuration: BridgeConfiguration) -> VariableSource {
        VariableSource(secretsDirectory: configuration.secretsDir, dataDirectory: configuration.dataDir)
    }

    /// The router `serve` and `replay` both use: the mappings, plus the
    /// built-in audit log when it is on.
    public static func router(registry: MappingRegistry, companies: CompanyDirectory, configuration: BridgeConfiguration) -> any EventRouter {
        var routers: [any EventRouter] = [MappingRouter(registry: registry, companies: companies, executorKinds: executorKinds)]
        if configuration.auditLog { routers.append(AuditLogRouter()) }
        return CompositeRouter(routers)
    }

    private init(
        configuration: BridgeConfiguration, services: Services, addressFile: String, store: SQLiteStore, registry: MappingRegistry,
        lock: DaemonLock, curl: CurlEngine, io: BlockingIOPool, logger: Logger
    ) {
        self.configuration = configuration
        self.serviceGroup = services.group
        self.reloader = services.reloader
        self.addressFile = addressFile
        self.store = store
        self.registry = registry
        self.lock = lock
        self.curl = curl
        self.io = io
        self.logger = logger
    }

    /// Prepares the data directory, takes the daemon lock, loads mappings,
    /// opens and recovers the store and builds every service. Nothing runs
    /// yet; a configuration that cannot work throws `ConfigurationError`.
    /// The lock, the store and the threads are released by `run()` when it
    /// returns, so a started application must be run.
    ///
    /// `signals` end the group gracefully (SIGTERM and SIGINT for the daemon;
    /// tests pass none and call `shutdown()`).
    public static func start(
        configuration config: BridgeConfiguration, logger: Logger, signals: [UnixSignal] = [.sigterm, .sigint],
        diagnostics: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    ) async throws -> BridgeApplication {
        umask(0o077)
        _ = jb_tune_allocator()
        guard let address = ListenAddress(config.listen) else {
            throw ConfigurationError("listen address must be HOST:PORT with a port from 0 to 65535, got '\(config.listen)'")
        }
        try DataDirectory.prepare(path: config.dataDir)
        let lock = try DaemonLock.acquire(dataDirectory: config.dataDir)
        do {
            return try await build(config, address: address, lock: lock, logger: logger, signals: signals, diagnostics: diagnostics)
        } catch {
            lock.release()
            throw error
        }
    }

    private static func build(
        _ config: BridgeConfiguration, address: ListenAddress, lock: DaemonLock, logger: Logger, signals: [UnixSignal],
        diagnostics: (String) -> Void
    ) async throws -> BridgeApplication {
        let tokens = try WebhookTokenSource.resolve(config: config, address: address, logger: logger)
        let (mappings, errors, _) = MappingLoader.load(
            directory: config.mappingsDir, connectors: config.connectors, variables: variables(for: config), strict: false, print: diagnostics)
        guard errors == 0 else {
            throw ConfigurationError(
                "\(errors) error(s) in the mapping files of \(config.mappingsDir): not starting (see above; `jobylon-bridge check` lists them)")
        }
        for (name, missing) in mappings.held.sorted(by: { $0.key < $1.key }) {
            logger.warning("mapping jobs will be held", metadata: ["mapping": "\(name)", "reason": "\(HoldReason.missingVariables(missing))"])
        }
        logger.info("mappings loaded", metadata: ["count": "\(mappings.mappings.count)", "directory": "\(config.mappingsDir)"])
        let registry = MappingRegistry(mappings)
        let clock = SystemWallClock()

        var storeOptions = SQLiteStoreOptions()
        storeOptions.maxPageCount = config.sqliteMaxPages
        storeOptions.maxRunningPerMapping = config.mappingConcurrency
        let store = try SQLiteStore(directory: config.dataDir, options: storeOptions, logger: logger)
        do {
            let archiveLayout = try await recover(store: store, config: config, mappings: mappings, clock: clock, logger: logger)
            let companies = CompanyDirectory(try store.companies())
            // Threads start last, once nothing else can fail.
            let curl = CurlEngine()
            let io = BlockingIOPool(threads: 4)
            let services = makeServices(
                config, address: address, tokens: tokens, registry: registry, companies: companies, store: store, archiveLayout: archiveLayout,
                curl: CurlClient(engine: curl), io: io, clock: clock, logger: logger, signals: signals)
            return BridgeApplication(
                configuration: config, services: services, addressFile: (config.dataDir as NSString).appendingPathComponent("listen-address"),
                store: store, registry: registry, lock: lock, curl: curl, io: io, logger: logger)
        } catch {
            store.close()
            throw error
        }
    }

    /// What a previous run left: held jobs whose variables are now set,
    /// half-downloaded archive files, jobs of a process that died.
    private static func recover(
        store: SQLiteStore, config: BridgeConfiguration, mappings: MappingSet, clock: any WallClock, logger: Logger
    ) async throws -> ArchiveLayout {
        let released = try await store.releaseHeldJobs(mappings: mappings.ready, now: clock.now())
        if released > 0 { logger.notice("held jobs released: their variables are now set", metadata: ["jobs": "\(released)"]) }
        let archiveLayout = ArchiveLayout(root: config.resolvedArchiveDir)
        let removedPartials = try archiveLayout.prepare()
        if removedPartials > 0 {
            logger.warning(
                "archive: removed downloads a previous run left unfinished (their jobs run again)", metadata: ["files": "\(removedPartials)"])
        }
        let releasedArchive = try await store.releaseJobsHeldForMissingExecutor(kinds: ["archive"], now: clock.now())
        if releasedArchive > 0 { logger.notice("archive jobs released: this version archives files", metadata: ["jobs": "\(releasedArchive)"]) }
        if config.tlsInsecureSkipVerify {
            logger.critical(
                "TLS VERIFICATION IS OFF for outbound requests (tls_insecure_skip_verify): personal data can be intercepted; never use this in production"
            )
        }
        let recovered = try await store.recoverJobsOfDeadRunners(now: clock.now())
        if recovered.requeued + recovered.inDoubt > 0 {
            logger.warning(
                "recovered jobs of a previous run", metadata: ["requeued": "\(recovered.requeued)", "in_doubt": "\(recovered.inDoubt)"])
        }
        return archiveLayout
    }

    /// The group and the one service the application talks to directly.
    private struct Services {
        var group: ServiceGroup
        var reloader: MappingReloader
    }

    private static func makeServices(
        _ config: BridgeConfiguration, address: ListenAddress, tokens: [String], registry: MappingRegistry, companies: CompanyDirectory,
        store: SQLiteStore,
        archiveLayout: ArchiveLayout, curl: CurlClient, io: BlockingIOPool, clock: any WallClock, logger: Logger, signals: [UnixSignal]
    ) -> Services {
        let metrics = PrometheusCollectorRegistry()
        let metricsFactory = PrometheusMetricsFactory(registry: metrics)
        var runnerConfiguration = JobRunnerConfiguration()
        runnerConfiguration.leaseDuration = .seconds(config.leaseSeconds)
        runnerConfiguration.concurrency = config.runnerConcurrency
        runnerConfiguration.lane = .dueTime
        var archiveConfiguration = ArchiveConfiguration(directory: config.resolvedArchiveDir)
        archiveConfiguration.allowedHosts = config.archiveAllowedHosts
        archiveConfiguration.retention = ArchiveRetention(
            defaultDays: config.archiveRetentionDays, daysByClass: config.archiveRetentionDaysByClass)
        archiveConfiguration.maxRetryDelay = .seconds(config.archiveMaxRetrySeconds)
        archiveConfiguration.downloader.caBundle = config.tlsCABundle
        archiveConfiguration.downloader.verifyPeer = !config.tlsInsecureSkipVerify
        archiveConfiguration.downloader.guardedPaths = [config.resolvedArchiveDir, config.dataDir]
        archiveConfiguration.downloader.freeSpaceFloorBytes = Int64(config.archiveFreeSpaceFloorMB) << 20
        // One token cache for every sender: a downstream's token is fetched once.
        let oauthTokens = OAuth2Tokens(metricsFactory: metricsFactory, credentials: store, logger: logger)
        // One gate per downstream for every sender: a 429 or an open breaker pauses all of it.
        let downstreams = Downstreams(metricsFactory: metricsFactory)
        let tls = RestExecutor.TLSSettings(
            caBundle: config.tlsCABundle, insecureSkipVerify: config.tlsInsecureSkipVerify, proxy: config.outboundProxy)
        let executors: [any JobExecutor] = [
            LogExecutor(),
            RestExecutor(registry: registry, client: curl, clock: clock, tls: tls, store: store, tokens: oauthTokens, downstreams: downstreams),
            FlowExecutor(registry: registry, store: store, client: curl, clock: clock, tls: tls, tokens: oauthTokens, downstreams: downstreams),
            CSVExecutor(registry: registry, store: store, clock: clock),
            ArchiveExecutor(
                registry: registry, store: store, clock: clock, configuration: archiveConfiguration, client: curl, io: io,
                metricsFactory: metricsFactory),
        ]
        let owner = "\(ProcessInfo.processInfo.hostName):\(getpid())"
        let runner = JobRunner(
            store: store, executors: executors, clock: clock, configuration: runnerConfiguration,
            owner: owner, logger: logger, metricsFactory: metricsFactory, pressure: store)
        // Downloads race their URLs' expiry: their own lane, earliest deadline first,
        // `archive_parallel` transfers at once, never queued behind payroll calls.
        var archiveRunnerConfiguration = runnerConfiguration
        archiveRunnerConfiguration.concurrency = config.archiveParallel
        archiveRunnerConfiguration.lane = .earliestDeadline
        let archiveRunner = JobRunner(
            store: store, executors: executors, clock: clock, configuration: archiveRunnerConfiguration,
            owner: owner + "/archive", logger: logger, metricsFactory: metricsFactory, pressure: store)
        let wakeRunners: @Sendable () -> Void = {
            runner.wakeup.signal()
            archiveRunner.wakeup.signal()
        }
        store.setJobsCommittedHandler(wakeRunners)
        let routing = EventRoutingService(
            queue: store, router: router(registry: registry, companies: companies, configuration: config), logger: logger, pressure: store,
            endedAtCreation: { job, logger in runner.reportEndedAtCreation(job, logger: logger) },
            prepareAtCreation: { runner.prepareAtCreation($0) })
        store.setEventsQueuedHandler { routing.wakeup.signal() }

        var receiverConfiguration = WebhookReceiverConfiguration()
        receiverConfiguration.maxBodyBytes = config.maxBodyBytes
        receiverConfiguration.allowedCompanies = config.allowedCompanies
        let receiver = WebhookReceiver(
            configuration: receiverConfiguration, tokens: WebhookTokens(tokens), store: store,
            clock: clock, logger: logger, metricsFactory: metricsFactory)
        let addressFile = (config.dataDir as NSString).appendingPathComponent("listen-address")
        var serverConfiguration = BridgeServerConfiguration(host: address.host, port: address.port)
        serverConfiguration.maxConnections = config.maxConnections
        let server = BridgeServer.makeApplication(
            configuration: serverConfiguration,
            readiness: StoreReadiness(store: store, dataDirectory: config.dataDir),
            receiver: receiver,
            metrics: metrics,
            logger: logger,
            onListening: { [logger] host, port in
                // For operators and tests that start the daemon on port 0.
                do throws(IOFailure) {
                    try DurableFiles.write(Array("\(host):\(port)\n".utf8), to: addressFile, mode: 0o600)
                } catch {
                    logger.error("cannot write the listen address file", metadata: ["error": "\(error)"])
                }
                logger.notice("listening", metadata: ["address": "\(host):\(port)"])
            }
        )
        let reloader = MappingReloader(
            directory: config.mappingsDir, connectors: config.connectors, variables: { variables(for: config) }, registry: registry, store: store,
            clock: clock,
            wake: wakeRunners, logger: logger)
        let csvExports = CSVExportService(
            registry: registry,
            exporter: CSVExporter(store: store, registry: registry, outbox: (config.dataDir as NSString).appendingPathComponent("outbox")),
            uploader: CSVUploader(store: store, registry: registry, client: curl, io: io, clock: clock, logger: logger),
            io: io, clock: clock, owner: owner, logger: logger)
        let maintenance = StoreMaintenance(
            store: store, clock: clock, retention: RetentionPolicy(inboxBodyDays: config.retentionDays, quarantineDays: config.retentionDays),
            walPolicy: WALPolicy(maxWALBytes: max(16, config.sqliteWALMaxMB) << 20), metricsFactory: metricsFactory, logger: logger)
        let archiveRetention = ArchiveRetentionService(
            purger: ArchivePurger(store: store, layout: archiveLayout), io: io, clock: clock, logger: logger)
        let credentialRenewal = CredentialRenewal(
            store: store, tokens: oauthTokens, mappings: { registry.current }, client: curl, clock: clock, tls: tls, metricsFactory: metricsFactory,
            logger: logger)
        // Shutdown runs in reverse order: the HTTP server stops accepting first,
        // then routing, then the runners finish their attempts, then the rest.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [reloader, maintenance, archiveRetention, credentialRenewal, csvExports, archiveRunner, runner, routing, server],
                gracefulShutdownSignals: signals,
                logger: logger
            )
        )
        return Services(group: group, reloader: reloader)
    }

    /// Runs every service until a signal or `shutdown()` ends them, then
    /// stops the curl thread and the blocking pool, closes the store (its
    /// writer thread, a last checkpoint) and releases the daemon lock.
    public func run() async throws {
        do {
            try await serviceGroup.run()
        } catch {
            await release()
            throw error
        }
        await release()
        logger.notice("stopped")
    }

    /// Reloads the mappings and the secrets directory, as SIGHUP does;
    /// returns whether the new set is in force (a set with errors is refused).
    @discardableResult
    public func reloadMappings() async -> Bool {
        await reloader.reload()
    }

    /// Ends the services gracefully (as SIGTERM does); `run()` returns after.
    public func shutdown() async {
        await serviceGroup.triggerGracefulShutdown()
    }

    private func release() async {
        await curl.shutdown()
        await io.shutdown()
        store.close()
        lock.release()
    }
}
