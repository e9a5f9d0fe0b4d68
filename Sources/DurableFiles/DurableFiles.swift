#if canImport(Glibc)
import Glibc
#endif

/// A failed file-system call, with what was being done and `strerror`. Never
/// carries file contents.
public struct IOFailure: Error, Sendable, CustomStringConvertible {
    /// What failed, on which path, and why (`strerror`).
    public var message: String

    /// A failure with a message of the caller's own.
    public init(message: String) {
        self.message = message
    }

    /// `what` followed by the current `errno`'s text.
    public static func errno(_ what: String) -> IOFailure {
        IOFailure(message: "\(what): \(String(cString: strerror(Glibc.errno)))")
    }

    public var description: String { message }
}

/// The one way the bridge makes a file that survives a crash: written under a
/// temporary name, fsync'd, renamed into place, and the directory fsync'd so
/// the new name is durable too. A reader never sees a partial file under the
/// final name, and a crash leaves at worst a temporary file.
///
/// The CSV export and the archive (downloads, sidecars) both go through
/// here; written by hand on POSIX calls because Foundation's atomic writes
/// neither fsync the file nor the directory.
public enum DurableFiles {
    /// Writes `bytes` to `path` atomically with permissions `mode`. The
    /// temporary file sits next to `path`, or in `stagingDirectory` (same
    /// volume) where a crash's leftovers are cleaned up.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600, stagingDirectory: String? = nil) throws(IOFailure) {
        let file = try StagedFile.create(for: path, in: stagingDirectory ?? directory(of: path), mode: mode)
        do throws(IOFailure) {
            try file.append(bytes)
            try file.finish()
            try publish(file.temporaryPath, as: path)
        } catch {
            file.discard()
            throw error
        }
    }

    /// Renames a finished temporary file to `finalPath` (same volume) and
    /// fsyncs the directory that now holds the name.
    public static func publish(_ temporaryPath: String, as finalPath: String) throws(IOFailure) {
        guard rename(temporaryPath, finalPath) == 0 else { throw IOFailure.errno("cannot rename into \(finalPath)") }
        try syncDirectory(directory(of: finalPath))
    }

    /// fsync of a directory: makes the names created or renamed in it durable.
    public static func syncDirectory(_ path: String) throws(IOFailure) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure.errno("cannot open directory \(path) for fsync") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw IOFailure.errno("fsync of directory \(path) failed") }
    }

    /// Creates `path` with `mode` if it is missing (and fsyncs its parent, so
    /// the new directory survives a crash), and sets `mode` on it either way
    /// (a directory of personal data stays 0700 even if someone loosened it).
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(IOFailure) {
        if mkdir(path, mode) == 0 {
            try syncDirectory(directory(of: path))
        } else if Glibc.errno != EEXIST {
            throw IOFailure.errno("cannot create directory \(path)")
        }
        guard chmod(path, mode) == 0 else { throw IOFailure.errno("cannot set permissions on \(path)") }
    }

    /// The directory part of a path (`.` for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// A file being written under a temporary name: appended to sequentially by
/// one task at a time, then finished (fsync, close) and published with
/// `DurableFiles.publish`, or discarded.
public final class StagedFile: @unchecked Sendable {
    /// Where the content lives until `DurableFiles.publish` renames it.
    public let temporaryPath: String
    private let fd: Int32
    private var open = true
    /// Bytes appended so far.
    public private(set) var size: Int64 = 0

    private init(temporaryPath: String, fd: Int32) {
        self.temporaryPath = temporaryPath
        self.fd = fd
    }

    /// Creates `temporaryPath` exclusively (an existing file is an error).
    public static func create(at temporaryPath: String, mode: mode_t = 0o600) throws(IOFailure) -> StagedFile {
        let fd = Glibc.open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw IOFailure.errno("cannot create temporary file \(temporaryPath)") }
        // The umask may have narrowed `mode`; the caller's mode is what the file gets.
        guard fchmod(fd, mode) == 0 else {
            let failure = IOFailure.errno("cannot set permissions on \(temporaryPath)")
            close(fd)
            unlink(temporaryPath)
            throw failure
        }
        return StagedFile(temporaryPath: temporaryPath, fd: fd)
    }

    /// A fresh hidden temporary name in the directory of `finalPath`, so the
    /// publishing rename stays on one volume.
    public static func create(nextTo finalPath: String, mode: mode_t = 0o600) throws(IOFailure) -> StagedFile {
        try create(for: finalPath, in: DurableFiles.directory(of: finalPath), mode: mode)
    }

    /// A fresh hidden temporary name for `finalPath` in `directory` (which must
    /// be on the same volume as `finalPath`).
    public static func create(for finalPath: String, in directory: String, mode: mode_t = 0o600) throws(IOFailure) -> StagedFile {
        let name = finalPath.split(separator: "/").last.map(String.init) ?? "file"
        return try create(at: "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", mode: mode)
    }

    /// Writes all of `bytes`, resuming after partial writes and `EINTR`.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(IOFailure) {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if Glibc.errno == EINTR { continue }
                throw IOFailure.errno("write to \(temporaryPath) failed")
            }
            offset += written
        }
        size += Int64(bytes.count)
    }

    /// Writes all of `bytes`, resuming after partial writes and `EINTR`.
    public func append(_ bytes: [UInt8]) throws(IOFailure) {
        let failure: IOFailure? = bytes.withUnsafeBytes { raw in
            do throws(IOFailure) {
                try append(raw)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// A file neither finished nor discarded still gives back its descriptor
    /// (the temporary file stays for the next start's clean-up).
    deinit {
        if open { close(fd) }
    }

    /// fsync and close: the content is durable under the temporary name.
    /// `mode`, when given, is set first, so a file written 0600 becomes
    /// readable by others only once it is complete.
    public func finish(mode: mode_t? = nil) throws(IOFailure) {
        guard open else { return }
        open = false
        if let mode, fchmod(fd, mode) != 0 {
            let failure = IOFailure.errno("cannot set permissions on \(temporaryPath)")
            close(fd)
            throw failure
        }
        if fsync(fd) != 0 {
            let failure = IOFailure.errno("fsync of \(temporaryPath) failed")
            close(fd)
            throw failure
        }
        guard close(fd) == 0 else { throw IOFailure.errno("close of \(temporaryPath) failed") }
    }

    /// Closes (if open) and deletes the temporary file.
    public func discard() {
        if open {
            open = false
            close(fd)
        }
        unlink(temporaryPath)
    }
}
