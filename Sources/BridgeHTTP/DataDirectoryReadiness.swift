import Foundation

/// Ready when the data directory exists and is writable by this process.
///
/// The store adds its own check (a committed probe transaction) once it exists;
/// this one catches the common operator faults: a missing or read-only volume.
public struct DataDirectoryReadiness: ReadinessCheck {
    /// Checked on every probe, so a volume that disappears later makes the replica unready.
    public let path: String

    /// Touches nothing until the first `check()`.
    public init(path: String) {
        self.path = path
    }

    /// A stat and an `access(W_OK)` check, no write; `data_dir` in the details
    /// says which fault it found.
    public func check() async -> ReadinessReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return ReadinessReport(ready: false, details: ["data_dir": "missing"])
        }
        guard access(path, W_OK) == 0 else {
            return ReadinessReport(ready: false, details: ["data_dir": "not writable"])
        }
        return ReadinessReport(ready: true, details: ["data_dir": "ok"])
    }
}
