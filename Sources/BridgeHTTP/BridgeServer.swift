import Hummingbird
import Logging
import NIOCore
import Prometheus

/// Where the HTTP server listens and how it protects itself.
public struct BridgeServerConfiguration: Sendable {
    /// Loopback by default, so other machines cannot reach the port until the
    /// operator binds a wider address.
    public var host: String
    /// `0` picks an ephemeral port (tests); the bound port is reported to `onListening`.
    public var port: Int
    /// Connections idle longer than this are closed (slow-loris protection).
    public var idleTimeout: Duration = .seconds(60)
    /// Connections beyond this wait in the listen backlog instead of being served.
    public var maxConnections: Int = 1024
    /// A larger header field ends the connection with an error.
    public var maxHeaderFieldBytes: Int = 16 * 1024
    /// A larger header block as a whole ends the connection with an error.
    public var maxHeaderBytes: Int = 64 * 1024
    /// More header fields than this end the connection with an error.
    public var maxHeaderCount: Int = 100

    /// Only where to listen; the limits keep their defaults unless set afterwards.
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the bridge's Hummingbird application from its parts.
public enum BridgeServer {
    /// Serves `/healthz` and `/readyz` always, the webhook route when
    /// `receiver` is given and `/metrics` when `metrics` is; `onListening` gets
    /// the port actually bound (useful with port `0`).
    public static func makeApplication(
        configuration: BridgeServerConfiguration,
        readiness: any ReadinessCheck,
        receiver: WebhookReceiver? = nil,
        metrics: PrometheusCollectorRegistry? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        HealthEndpoints(readiness: readiness).register(on: router)
        receiver?.register(on: router)
        if let metrics {
            router.get("/metrics") { _, _ -> Response in
                var buffer = ByteBuffer()
                buffer.writeBytes(metrics.emitToBuffer())
                return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: buffer))
            }
        }
        return Application(
            router: router,
            server: .http1(
                configuration: .init(
                    idleTimeout: .milliseconds(configuration.idleTimeout.milliseconds),
                    httpDecoderConfiguration: .init(
                        maxHeaderFieldSize: configuration.maxHeaderFieldBytes,
                        maxHeaderListSize: configuration.maxHeaderBytes,
                        maxHeaderFieldCount: configuration.maxHeaderCount))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "jobylon-bridge",
                availableConnectionsDelegate: .maximum(configuration.maxConnections, logger: logger)
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                await onListening(configuration.host, port)
            },
            logger: logger
        )
    }
}
