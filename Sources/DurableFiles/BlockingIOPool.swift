import NIOPosix

/// The bounded set of threads for blocking file-system work (writes, fsync,
/// renames, a CSV period streamed from the store to a file), so none of it
/// runs on the cooperative pool that serves webhooks, and a slow or hung disk
/// can occupy at most `threads` threads instead of growing a queue's threads
/// without bound.
///
/// One pool per process, made by the application and shut down after the
/// services that use it stopped; tests make their own. A pool dropped without
/// `shutdown()` stops its threads too (without waiting for them).
public final class BlockingIOPool: Sendable {
    private let pool: NIOThreadPool

    /// Starts `threads` threads.
    public init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    deinit {
        // Harmless when `shutdown()` already ran: the pool answers with an error we ignore.
        pool.shutdownGracefully { _ in }
    }

    /// Runs `body` on one of the pool's threads and returns its result.
    ///
    /// The work runs even when the calling task is cancelled (a clean-up after
    /// a cancelled download must still close and delete its file; NIO's
    /// `runIfActive` would drop it); only a pool that is shut down refuses it,
    /// with an `IOFailure`.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws(IOFailure) -> T {
        let result: Result<T, IOFailure> = await withCheckedContinuation { continuation in
            pool.submit { state in
                switch state {
                case .active: continuation.resume(returning: .success(body()))
                case .cancelled: continuation.resume(returning: .failure(IOFailure(message: "the blocking I/O pool is shut down")))
                }
            }
        }
        return try result.get()
    }

    /// Runs a body that reports its own `IOFailure`; a shut-down pool is one more failure.
    public func result<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, IOFailure>) async -> Result<T, IOFailure> {
        do throws(IOFailure) {
            return try await run(body)
        } catch {
            return .failure(error)
        }
    }

    /// Stops the threads once the work in progress returned; work still queued
    /// is refused (the application shuts the pool down after every service
    /// that uses it has stopped).
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
