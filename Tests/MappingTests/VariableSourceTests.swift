import Foundation
import Mapping
import Testing

@Suite("Variables: environment, secrets directory, per-company secrets")
struct VariableSourceTests {
    /// A secrets directory with a shared `PAYROLL_URL`, `HR_TOKEN` for company `c-1` only, and folders that are no company.
    static func secrets() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jb-variables-\(UUID().uuidString)").path
        for folder in ["companies/c-1", "companies/.hidden", "companies/bad.name"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        try "https://payroll.example".write(toFile: root + "/PAYROLL_URL", atomically: true, encoding: .utf8)
        try "tok-c1\n".write(toFile: root + "/companies/c-1/HR_TOKEN", atomically: true, encoding: .utf8)
        try "tok-hidden".write(toFile: root + "/companies/.hidden/OTHER_TOKEN", atomically: true, encoding: .utf8)
        try "tok-bad".write(toFile: root + "/companies/bad.name/OTHER_TOKEN", atomically: true, encoding: .utf8)
        return root
    }

    @Test func aPerCompanyNameIsReadOnlyFromTheJobsCompanyFolder() throws {
        let variables = VariableSource(environment: ["HR_TOKEN": "tok-shared"], secretsDirectory: try Self.secrets())
        #expect(variables.scopedToCompany("c-1").value("HR_TOKEN") == "tok-c1")
        #expect(variables.scopedToCompany("c-2").value("HR_TOKEN") == nil, "never the shared value of the same name")
        #expect(variables.value("HR_TOKEN") == nil, "unscoped: no company, no value")
        #expect(variables.scopedToCompany("c-2").value("PAYROLL_URL") == "https://payroll.example", "shared names stay shared")
    }

    @Test func aPerCompanyNameCountsAsAvailableAtLoadAndIsDescribedWithItsCompanyWhenMissing() throws {
        let variables = VariableSource(environment: [:], secretsDirectory: try Self.secrets())
        #expect(variables.isAvailable("HR_TOKEN"))
        #expect(!variables.isAvailable("OTHER_TOKEN"), "hidden and dotted folders are no company")
        #expect(
            variables.scopedToCompany("c-2").describeMissing("HR_TOKEN")
                == "HR_TOKEN for this job's company (no file companies/<company id>/HR_TOKEN in the secrets directory)")
        #expect(variables.describeMissing("HR_TOKEN") == "HR_TOKEN (per company, and the event has no company id)")
        #expect(variables.scopedToCompany("c-2").describeMissing("PAYROLL_URL") == "PAYROLL_URL")
        #expect(!variables.description.contains("tok"))
    }
}
