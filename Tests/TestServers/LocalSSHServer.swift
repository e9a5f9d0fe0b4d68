import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real OpenSSH server (`/usr/sbin/sshd`, Debian's openssh-server) on
/// 127.0.0.1 for SFTP tests: a throwaway ed25519 host key and user key, the
/// user's key authorised, internal-sftp. It listens on two ports: `port`
/// accepts writes, `readOnlyPort` serves `internal-sftp -R` (every write is
/// refused as permission denied). `stop()` ends it; `start()` again brings it
/// back on the same ports with the same keys (a server that was down).
public final class LocalSSHServer: @unchecked Sendable {
    /// Everything lives here: keys, configuration, the served `files/` folder.
    public let directory: String
    /// The folder uploads go to, absolute.
    public var files: String { directory + "/files" }
    public let port: Int
    public let readOnlyPort: Int
    /// The user's private key (no passphrase) and one protected by `passphrase`.
    public var userKey: String { directory + "/user_ed25519" }
    public var protectedUserKey: String { directory + "/user_protected_ed25519" }
    public let passphrase = "correct horse"
    /// Another key, never authorised.
    public var strangerKey: String { directory + "/stranger_ed25519" }
    /// `SHA256:…` of the host key, as `ssh-keygen -lf` prints it.
    public private(set) var hostKeySHA256 = ""
    /// A known_hosts file holding this server's key for both ports.
    public var knownHosts: String { directory + "/known_hosts" }
    /// A known_hosts file holding another key for the same host and ports.
    public var wrongKnownHosts: String { directory + "/known_hosts_wrong" }
    /// The account the tests log in as (whoever runs them).
    public let user: String
    private var process: ChildProcess?

    /// Generates the keys and configuration and starts the server.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-sshd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/files", withIntermediateDirectories: true)
        port = try LocalSSHServer.freePort()
        readOnlyPort = try LocalSSHServer.freePort()
        user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        for (name, passphrase) in [("host_ed25519", ""), ("other_host_ed25519", ""), ("user_ed25519", ""), ("stranger_ed25519", "")] {
            try LocalSSHServer.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", directory + "/" + name])
        }
        try LocalSSHServer.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "protected", "-f", protectedUserKey])
        let authorised = [userKey, protectedUserKey].map { (try? String(contentsOfFile: $0 + ".pub", encoding: .utf8)) ?? "" }.joined()
        try authorised.write(toFile: directory + "/authorized_keys", atomically: true, encoding: .utf8)
        let fingerprint = try LocalSSHServer.run("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", directory + "/host_ed25519.pub"])
        hostKeySHA256 = fingerprint.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        func knownHostsLines(_ key: String) -> String {
            let publicKey = ((try? String(contentsOfFile: directory + "/" + key + ".pub", encoding: .utf8)) ?? "")
                .split(separator: " ").prefix(2).joined(separator: " ")
            return [port, readOnlyPort].map { "[127.0.0.1]:\($0) \(publicKey)\n" }.joined()
        }
        try knownHostsLines("host_ed25519").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try knownHostsLines("other_host_ed25519").write(toFile: wrongKnownHosts, atomically: true, encoding: .utf8)
        let config = """
            ListenAddress 127.0.0.1:\(port)
            ListenAddress 127.0.0.1:\(readOnlyPort)
            HostKey \(directory)/host_ed25519
            PidFile \(directory)/sshd.pid
            AuthorizedKeysFile \(directory)/authorized_keys
            StrictModes no
            UsePAM yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            Subsystem sftp internal-sftp
            Match LocalPort \(readOnlyPort)
                ForceCommand internal-sftp -R

            """
        try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
        // Root's sshd wants its privilege-separation folder.
        if geteuid() == 0 { try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true) }
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts sshd in the foreground of a child process and waits until it accepts connections.
    public func start() throws {
        guard process == nil else { return }
        let log = directory + "/sshd.log"
        let logFile = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { close(logFile) }
        // sshd re-executes itself and so must be started by its absolute path.
        let sshd = try ChildProcess.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", directory + "/sshd_config"], output: logFile)
        process = sshd
        for _ in 0..<200 {
            if LocalSSHServer.accepts(port) && LocalSSHServer.accepts(readOnlyPort) { return }
            if !sshd.isRunning { break }
            usleep(25_000)
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        stop()
        throw SSHServerError(message: "sshd did not start: \(text)")
    }

    /// Stops sshd (SIGTERM) and waits for it; the ports then refuse connections.
    public func stop() {
        guard let sshd = process else { return }
        process = nil
        sshd.terminate()
    }

    /// The server's log so far, for failure messages.
    public var log: String { (try? String(contentsOfFile: directory + "/sshd.log", encoding: .utf8)) ?? "" }

    /// `sftp://127.0.0.1:<port>` + `path` (absolute, inside `files`).
    public func url(_ name: String, readOnly: Bool = false) -> String {
        "sftp://127.0.0.1:\(readOnly ? readOnlyPort : port)\(files)/\(name)"
    }

    public struct SSHServerError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let finished = try ChildProcess.run([executable] + arguments)
        guard finished.status == 0 else { throw SSHServerError(message: "\(executable) failed: \(finished.text)") }
        return finished.text
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw SSHServerError(message: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
