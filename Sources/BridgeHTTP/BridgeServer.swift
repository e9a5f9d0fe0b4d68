import Hummingbird
import Logging
import NIOCore

/// Where the HTTP server listens and how it protects itself.
public struct BridgeServerConfiguration: Sendable {
    public var host: String
    /// `0` picks an ephemeral port (tests); the bound port is reported to `onListening`.
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the bridge's Hummingbird application from its parts.
public enum BridgeServer {
    public static func makeApplication(
        configuration: BridgeServerConfiguration,
        readiness: any ReadinessCheck,
        logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        HealthEndpoints(readiness: readiness).register(on: router)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "jobylon-bridge"
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                await onListening(configuration.host, port)
            },
            logger: logger
        )
    }
}
