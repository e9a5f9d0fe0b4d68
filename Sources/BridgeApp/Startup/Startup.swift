import DurableFiles
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `HOST:PORT`, with `[v6]:PORT` for IPv6 literals.
public struct ListenAddress: Equatable, Sendable {
    /// A name or an address literal, without brackets.
    public var host: String
    /// 0 asks the kernel for a free port.
    public var port: Int

    /// `nil` for anything but `HOST:PORT` with a port from 0 to 65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    /// Only a loopback daemon may generate its own webhook token.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The data directory holds personal data: it exists and is 0700 before anything is written.
public enum DataDirectory {
    /// Creates the directory 0700, or tightens an existing one to 0700: it holds personal data.
    public static func prepare(path: String) throws(ConfigurationError) {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ConfigurationError("cannot create data directory \(path): \(error.localizedDescription)")
            }
        }
        guard chmod(path, 0o700) == 0 else {
            throw ConfigurationError("cannot set permissions 0700 on data directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// One daemon per SQLite store: an exclusive `flock` held for the process's life.
public struct DaemonLock: Sendable {
    let fd: Int32

    /// Fails at once (no waiting) when another daemon holds the lock.
    public static func acquire(dataDirectory: String) throws(ConfigurationError) -> DaemonLock {
        let path = (dataDirectory as NSString).appendingPathComponent("daemon.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ConfigurationError(
                "another jobylon-bridge daemon already serves \(dataDirectory); one daemon per SQLite store (use PostgreSQL for several)")
        }
        return DaemonLock(fd: fd)
    }

    /// Unlocks and closes; the next daemon may start.
    public func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Where webhook tokens come from, and the one safe fallback.
public enum WebhookTokenSource {
    /// The configured tokens; with none, on loopback only, a generated one kept in the data directory.
    public static func resolve(config: BridgeConfiguration, address: ListenAddress, logger: Logger) throws(ConfigurationError) -> [String] {
        let tokens = try config.resolvedTokens()
        if !tokens.isEmpty {
            logger.info("webhook tokens loaded", metadata: ["count": "\(tokens.count)"])
            return tokens
        }
        guard address.isLoopback else {
            // A silently regenerated token after a lost data dir would 401 every
            // webhook, and Jobylon drops them after ~18 minutes.
            throw ConfigurationError(
                """
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
        do throws(IOFailure) {
            try DurableFiles.write(Array((token + "\n").utf8), to: path, mode: 0o600)
        } catch {
            throw ConfigurationError("cannot write generated token to \(path): \(error.message)")
        }
        logger.notice("no webhook token configured: generated one (loopback only)", metadata: ["file": "\(path)"])
        return [token]
    }
}
