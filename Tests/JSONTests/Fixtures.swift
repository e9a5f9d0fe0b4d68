import Foundation
import TestSupport

enum Fixtures {
    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw FixtureMissing(name: name)
        }
        return Array(try Data(contentsOf: url))
    }

    static let examples = ["candidate-new", "company-signup", "job-new", "job-update"]

    struct FixtureMissing: Error { var name: String }
}
