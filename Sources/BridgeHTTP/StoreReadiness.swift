import Domain

/// Ready = the data directory is usable and the store commits a probe write.
/// Mappings play no part (see `ReadinessCheck`).
public struct StoreReadiness: ReadinessCheck {
    let store: any EventStore
    let dataDirectory: DataDirectoryReadiness

    /// Combines the data-directory check with the store's own answer
    /// (`isAcceptingWrites`).
    public init(store: any EventStore, dataDirectory: String) {
        self.store = store
        self.dataDirectory = DataDirectoryReadiness(path: dataDirectory)
    }

    /// Ready only when both are; the store is asked even when the directory
    /// check failed, so the details show both.
    public func check() async -> ReadinessReport {
        var report = await dataDirectory.check()
        let writable = await store.isAcceptingWrites()
        report.details["store"] = writable ? "ok" : "not accepting writes"
        report.ready = report.ready && writable
        return report
    }
}
