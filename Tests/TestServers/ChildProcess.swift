import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs helper programs (python3, soffice, ssh-keygen, sshd) for tests with
/// `posix_spawn` and `waitpid`. Hand-written instead of Foundation's
/// `Process`: on Linux, `Process.waitUntilExit` hung (children left as
/// zombies) when several suites launched programs at once, which froze the
/// whole test run.
public struct ChildProcess: Sendable {
    /// The child's pid, for `terminate()` and `wait()`.
    public let pid: pid_t

    /// What a finished program printed (stdout and stderr together) and how it exited.
    public struct Finished: Sendable {
        /// The exit status, or 128 + the signal that ended it.
        public var status: Int32
        public var output: [UInt8]
        /// `output` as UTF-8 text.
        public var text: String { String(decoding: output, as: UTF8.self) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Runs `arguments[0]` (looked up on PATH) to its end, collecting its output.
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Finished {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw Failure(message: "pipe: \(String(cString: strerror(errno)))") }
        // Close-on-exec, so no other child started meanwhile keeps the write end (and the read) open.
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let child: ChildProcess
        do {
            child = try spawn(arguments, output: pipeEnds[1], environment: environment)
        } catch {
            close(pipeEnds[0])
            close(pipeEnds[1])
            throw error
        }
        close(pipeEnds[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 {
                output.append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        close(pipeEnds[0])
        return Finished(status: child.wait(), output: output)
    }

    /// Starts `arguments[0]` (looked up on PATH) without waiting; its output
    /// goes to `output` (a descriptor), or nowhere.
    public static func spawn(_ arguments: [String], output: Int32? = nil, environment: [String: String]? = nil) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, &envp)
        guard result == 0 else { throw Failure(message: "cannot start \(arguments[0]): \(String(cString: strerror(result)))") }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child to end; returns its status (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// True while the child has not ended (it is not reaped here).
    public var isRunning: Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == 0
    }

    /// SIGTERM, then waits for it.
    public func terminate() {
        kill(pid, SIGTERM)
        wait()
    }
}
