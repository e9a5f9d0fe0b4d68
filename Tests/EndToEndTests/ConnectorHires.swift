import Foundation
import GRDB

/// What the connector packs' end-to-end tests share: hire number `n` from a
/// pack's example event, and the jobs one mapping planned.
enum ConnectorHires {
    /// The event of `pack` (`mappings/connectors/<pack>/tests/events/candidate-hired.json`)
    /// as hire `n`: its own candidate id and, with `email` or `uniqueEmail`, its own address.
    static func hire(_ pack: String, _ n: Int, email: String? = nil, uniqueEmail: Bool = true, replacing more: [String: String] = [:])
        throws -> [UInt8]
    {
        let path = MappingsEndToEndTests.bundledMappings + "/connectors/\(pack)/tests/events/candidate-hired.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "aed6532d-2438-4e33-b15b-1f1a20ba1c16", with: String(format: "%08x-2438-4e33-b15b-1f1a20ba1c16", n))
        if let address = email ?? (uniqueEmail ? "bruce\(n)@wayneenterprises.com" : nil) {
            text = text.replacingOccurrences(of: "bruce@wayneenterprises.com", with: address)
        }
        for (from, to) in more { text = text.replacingOccurrences(of: from, with: to) }
        return Array(text.utf8)
    }

    /// The body of `hire` as a hand re-send: the same hire with another byte in it (Jobylon sends no delivery id).
    static func resend(_ body: [UInt8]) -> [UInt8] {
        Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "Please, don't call me", with: "Please don't call me").utf8)
    }

    /// State and capture of `mapping`'s jobs, oldest first.
    static func jobs(_ daemon: Daemon, mapping: String) throws -> [Row] {
        try daemon.query { db in try Row.fetchAll(db, sql: "SELECT state, capture FROM jobs WHERE mapping = ? ORDER BY id", arguments: [mapping]) }
    }
}
