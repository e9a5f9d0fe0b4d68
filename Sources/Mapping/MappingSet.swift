import Foundation
import JSON

/// Values for `${NAME}` placeholders: the environment (an empty value counts
/// as unset), then a secrets directory (one file per name); `DATA_DIR` is
/// always the built-in data directory, whatever the environment says.
///
/// Per-company credentials: a name with a file under
/// `<secrets dir>/companies/<company id>/` in any company's folder is *per
/// company*. For a job of company C (`scopedToCompany(_:)`, as `RestSender`
/// does for every request) it is read only from `companies/C/`, never from
/// the environment or the shared secrets, so one company's hire is never sent
/// with another's (or a shared) credential; a company without the file has its
/// jobs held naming the name and the company.
///
/// A snapshot: the secrets directory is read once, when the source is made
/// (at start and on SIGHUP, which makes a new one), never per request, so a
/// send never waits on the disk and a half-written secret file is never seen
/// by one job and not the next.
///
/// Its descriptions (plain, debug and reflected, as loggers and
/// `ServiceGroup`'s debug lines print services) name no variable and show no
/// value: the environment holds tokens and passwords.
public struct VariableSource: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "VariableSource(\(environment.count) environment variables, \(secrets.count) secrets, \(companySecrets.count) companies)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// Checked first for every name but `DATA_DIR`; an empty value counts as unset.
    public var environment: [String: String]
    /// File name → trimmed content of the secrets directory, as read at `init`.
    public private(set) var secrets: [String: String]
    /// The only source of `${DATA_DIR}`: the environment cannot override it.
    public var dataDirectory: String?
    /// The only source of `${SECRETS_DIR}` (e.g. a key file's folder); `nil` without one.
    public var secretsDirectory: String?
    /// Company id → its per-company secrets (`<secrets dir>/companies/<id>/`), as read at `init`.
    public private(set) var companySecrets: [String: [String: String]] = [:]
    /// Every name some company defines: such a name is never read from the environment or shared secrets.
    public private(set) var perCompanyNames: Set<String> = []
    /// The company whose per-company secrets `value(_:)` reads; `nil` before a job scopes it.
    public private(set) var company: String?

    /// Reads the secrets directory now, on the calling thread; a missing or
    /// unreadable directory gives no secrets, not an error.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, secretsDirectory: String? = nil, dataDirectory: String? = nil
    ) {
        self.environment = environment
        self.dataDirectory = dataDirectory
        self.secretsDirectory = secretsDirectory
        self.secrets = secretsDirectory.map(VariableSource.readSecrets) ?? [:]
        if let secretsDirectory {
            let companies = (secretsDirectory as NSString).appendingPathComponent("companies")
            for id in (try? FileManager.default.contentsOfDirectory(atPath: companies)) ?? [] where VariableSource.isCompanyFolderName(id) {
                let folder = (companies as NSString).appendingPathComponent(id)
                guard MappingSet.isDirectory(folder) else { continue }
                let values = VariableSource.readSecrets(folder)
                companySecrets[id] = values
                perCompanyNames.formUnion(values.keys)
            }
        }
    }

    /// Folder names taken as company ids: letters, digits, `-` and `_` (no dot, so no `..` or hidden folders).
    static func isCompanyFolderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
            }
    }

    /// The same variables for one company's job: per-company names resolve from its folder only.
    public func scopedToCompany(_ id: String?) -> VariableSource {
        var scoped = self
        scoped.company = id
        return scoped
    }

    /// Whether `name` is set here or, per company, for some company (the
    /// check at load: a per-company name is checked per job, when it is sent).
    public func isAvailable(_ name: String) -> Bool {
        value(name) != nil || perCompanyNames.contains(name)
    }

    /// How a missing name is shown to the operator: a per-company name says
    /// which file is missing. The company id itself is not in the text: ids
    /// look like tokens to the redactor (UUIDs), and `jobs` shows each job's
    /// company in its effect key.
    public func describeMissing(_ name: String) -> String {
        guard perCompanyNames.contains(name) else { return name }
        guard company != nil else { return "\(name) (per company, and the event has no company id)" }
        return "\(name) for this job's company (no file companies/<company id>/\(name) in the secrets directory)"
    }

    /// Every regular file of `directory` (hidden files skipped), trimmed; empty files are unset.
    static func readSecrets(_ directory: String) -> [String: String] {
        var secrets: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(name)
            guard !MappingSet.isDirectory(path), let data = FileManager.default.contents(atPath: path) else { continue }
            let text = String(decoding: data, as: UTF8.self).trimmingWhitespace()
            if !text.isEmpty { secrets[name] = text }
        }
        return secrets
    }

    /// What `${name}` resolves to, or `nil` when unset.
    public func value(_ name: String) -> String? {
        if name == "DATA_DIR" { return dataDirectory }
        if name == "SECRETS_DIR" { return secretsDirectory }
        if perCompanyNames.contains(name) { return company.flatMap { companySecrets[$0]?[name] } }
        if let value = environment[name], !value.isEmpty { return value }
        return secrets[name]
    }

    /// Names that hold credentials are masked wherever values are shown.
    public static func isSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASS", "AUTH"].contains { upper.contains($0) }
    }

    /// Whether `text` holds `${`: a byte scan (Foundation's `contains` on
    /// strings goes through CFString search, and this runs for every string a
    /// dry run prints).
    public static func mayHavePlaceholder(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{") && previous == UInt8(ascii: "$") { return true }
            previous = byte
        }
        return false
    }

    /// Replaces placeholders; unset variables without a default stay as `${NAME}`.
    /// `{{ }}` parts are dropped, and text that does not parse as a template is
    /// returned unchanged.
    public func substitute(_ text: String, mask: Bool) -> String {
        guard VariableSource.mayHavePlaceholder(text), let template = try? Template.parse(text) else { return text }
        var out = ""
        for part in template.parts {
            switch part {
            case .text(let t): out += t
            case .expression: out += ""
            case .variable(let name, let fallback):
                if let value = value(name) {
                    out += mask && VariableSource.isSecret(name) ? "********" : value
                } else if let fallback {
                    out += substitute(fallback, mask: mask)
                } else {
                    out += "${\(name)}"
                }
            }
        }
        return out
    }
}

/// All mappings of a directory, compiled and cross-checked, with the
/// variables they were checked against: the two are loaded and replaced
/// together, so a job never renders with variables its mapping was not
/// checked against.
public struct MappingSet: Sendable {
    /// Sorted by file path; only files that compiled without errors.
    public private(set) var mappings: [MappingFile]
    /// Mapping name → the `${VARIABLES}` it needs that are not set (its jobs are held).
    public var held: [String: [String]]
    /// The variables in force with these mappings.
    public let variables: VariableSource
    /// Reads bodies for all of these mappings at once (what any of them reads of `data`).
    public let envelopeReader: EnvelopeReader

    /// Works out `held` against `variables`; the mappings are not checked again.
    public init(mappings: [MappingFile], variables: VariableSource) {
        self.mappings = mappings
        self.variables = variables
        self.envelopeReader = EnvelopeReader(mappings.reduce(DataPaths.none) { $0.union($1.dataPaths) })
        var held: [String: [String]] = [:]
        for mapping in mappings {
            let missing = mapping.requiredVariables.filter { !variables.isAvailable($0) }
            if !missing.isEmpty { held[mapping.name] = missing }
        }
        self.held = held
    }

    /// Names of the mappings whose jobs may run (none of their variables is missing).
    public var ready: [String] { mappings.map(\.name).filter { held[$0] == nil } }

    /// Linear search; names are unique in a set that loaded without errors.
    public func mapping(named name: String) -> MappingFile? {
        mappings.first { $0.name == name }
    }

    /// Which files of a directory are mappings: `*.json` at the top level,
    /// except `schema.json`, `*.schema.json` and `*.lookup.json`.
    public static func mappingFiles(in directory: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        return names.filter { name in
            name.hasSuffix(".json") && name != "schema.json" && !name.hasSuffix(".schema.json") && !name.hasSuffix(".lookup.json")
                && !isDirectory((directory as NSString).appendingPathComponent(name))
        }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    /// Compiles every mapping of `directory`; the set is usable only when no
    /// diagnostic is an error.
    public static func load(directory: String, connectors: [String] = [], variables: VariableSource) -> (MappingSet, [MappingDiagnostic]) {
        var diagnostics: [MappingDiagnostic] = []
        var mappings: [MappingFile] = []
        var files: [String]
        do {
            files = try mappingFiles(in: directory)
            // A connector pack is loaded only when named, from `<directory>/connectors/<name>/`.
            for connector in connectors {
                let folder = (directory as NSString).appendingPathComponent("connectors/" + connector)
                let isName =
                    !connector.isEmpty
                    && connector.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
                guard isName, let packFiles = try? mappingFiles(in: folder), !packFiles.isEmpty else {
                    diagnostics.append(
                        MappingDiagnostic(
                            severity: .error, file: folder, line: 1, column: 1, pointer: "",
                            message: "unknown connector \"\(connector)\": no directory connectors/\(connector) with mapping files"))
                    continue
                }
                files += packFiles
            }
        } catch {
            return (
                MappingSet(mappings: [], variables: variables),
                [
                    MappingDiagnostic(
                        severity: .error, file: directory, line: 1, column: 1, pointer: "", message: "cannot read the mappings directory")
                ]
            )
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                diagnostics.append(MappingDiagnostic(severity: .error, file: file, line: 1, column: 1, pointer: "", message: "cannot read file"))
                continue
            }
            let (mapping, fileDiagnostics) = MappingCompiler.compile(file: file, bytes: [UInt8](data))
            diagnostics += fileDiagnostics
            if let mapping { mappings.append(mapping) }
        }
        diagnostics += crossCheck(mappings)
        return (MappingSet(mappings: mappings, variables: variables), diagnostics)
    }

    /// Duplicate names; `after` and `on_repeat` must name a mapping that
    /// exists; one OAuth2 credential name, one client.
    static func crossCheck(_ mappings: [MappingFile]) -> [MappingDiagnostic] {
        var diagnostics: [MappingDiagnostic] = []
        var seen: [String: String] = [:]
        let names = Set(mappings.map(\.name))
        func at(_ mapping: MappingFile, _ message: String) -> MappingDiagnostic {
            MappingDiagnostic(severity: .error, file: mapping.file, line: 1, column: 1, pointer: "", message: message)
        }
        for mapping in mappings {
            if let other = seen[mapping.name] {
                diagnostics.append(at(mapping, "duplicate mapping name \"\(mapping.name)\" (also in \(other))"))
            }
            seen[mapping.name] = mapping.file
            if let after = mapping.after, after == mapping.name {
                diagnostics.append(at(mapping, "\"after\" names the mapping itself: its jobs would wait for themselves forever"))
            } else if let after = mapping.after, !names.contains(after) {
                diagnostics.append(at(mapping, "\"after\" names an unknown mapping \"\(after)\""))
            }
            if case .mapping(let other) = mapping.onRepeat, !names.contains(other) {
                diagnostics.append(at(mapping, "\"on_repeat\" must be \"skip\", \"send\" or the name of a mapping; \"\(other)\" is none"))
            }
        }
        for mapping in mappings where !mapping.responseReads.isEmpty {
            // `response` of an `after` request is the other mapping's capture: a name it does not capture is always null.
            guard let after = mapping.after, let other = mappings.first(where: { $0.name == after }) else { continue }
            let captured: [String]
            switch other.target {
            case .rest(let rest): captured = rest.capture.map(\.name)
            // A flow's capture is its steps' (`response.<step>.<capture>`).
            case .flow(let flow): captured = flow.steps.map(\.name)
            case .csv, .archive: captured = []
            }
            for read in mapping.responseReads where !captured.contains(read.name) {
                let offer =
                    captured.isEmpty
                    ? "it captures nothing (a \"capture\" block in its rest target)" : "it captures \(captured.joined(separator: ", "))"
                diagnostics.append(
                    MappingDiagnostic(
                        severity: .error, file: read.location.file, line: read.location.line, column: read.location.column,
                        pointer: read.location.pointer, message: "response.\(read.name): \(after) captures no \"\(read.name)\"; \(offer)"))
            }
        }
        // One stored refresh token belongs to one client: a refresh by one client would be refused to the other.
        var credentials: [String: (mapping: String, grant: OAuth2RefreshTokenGrant)] = [:]
        for mapping in mappings {
            for grant in mapping.refreshTokenGrants {
                if let first = credentials[grant.credential] {
                    if first.grant.tokenURL != grant.tokenURL || first.grant.clientID != grant.clientID {
                        diagnostics.append(
                            at(
                                mapping,
                                "credential \"\(grant.credential)\" is also used by mapping \(first.mapping) with another token_url or client_id; "
                                    + "one stored credential belongs to one client"))
                    }
                } else {
                    credentials[grant.credential] = (mapping.name, grant)
                }
            }
        }
        for cycle in afterCycles(mappings) {
            guard let first = mappings.first(where: { $0.name == cycle[0] }) else { continue }
            diagnostics.append(
                at(first, "\"after\" goes round in a cycle: \((cycle + [cycle[0]]).joined(separator: " → ")); every job in it would wait forever"))
        }
        return diagnostics
    }

    /// Each cycle of `after` links between different mappings once, named from
    /// its alphabetically first mapping (a mapping `after` itself is reported on its own).
    static func afterCycles(_ mappings: [MappingFile]) -> [[String]] {
        var next: [String: String] = [:]
        for mapping in mappings { if let after = mapping.after, after != mapping.name { next[mapping.name] = after } }
        var cycles: [[String]] = []
        var reported = Set<String>()
        for start in next.keys.sorted() where !reported.contains(start) {
            var path: [String] = []
            var current: String? = start
            var seen: [String: Int] = [:]
            while let name = current, seen[name] == nil, !reported.contains(name) {
                seen[name] = path.count
                path.append(name)
                current = next[name]
            }
            if let name = current, let index = seen[name] {
                var cycle = Array(path[index...])
                if let smallest = cycle.indices.min(by: { cycle[$0] < cycle[$1] }) { cycle = Array(cycle[smallest...] + cycle[..<smallest]) }
                cycles.append(cycle)
            }
            reported.formUnion(path)
        }
        return cycles
    }
}
