import Foundation
import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("Mapping compiler")
struct MappingCompilerTests {
    func compile(_ text: String, file: String = "m.json") -> (MappingFile?, [MappingDiagnostic]) {
        MappingCompiler.compile(file: file, bytes: Array(text.utf8))
    }

    let valid = """
        {
          "name": "m",
          "when": { "event": "candidate/new", "if": "candidate.status.group == 20" },
          "rest": { "url": "${PAYROLL_URL}/v1/{{ candidate.id }}", "body": { "n": "{{ candidate.internal_id }}", "fixed": 1 } }
        }
        """

    @Test func aValidMappingCompilesAndPlans() throws {
        let (mapping, diagnostics) = compile(valid)
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty, "\(diagnostics)")
        let m = try #require(mapping)
        #expect(m.requiredVariables == ["PAYROLL_URL"])
        let data = try JSONParser.parse(#"{"candidate": {"id": "c1", "internal_id": 7, "status": {"group": 20}}}"#)
        let event = MappingEvent(type: "candidate", action: "new", data: data, receivedAt: "2026-01-01T00:00:00.000Z", entityKey: "co:c1")
        guard case .planned(let jobs) = m.plan(event, now: "2026-01-01T00:00:00.000Z") else {
            Issue.record("no plan")
            return
        }
        #expect(jobs.first?.effectKey == "co:c1")
        #expect(jobs.first?.payload["url"] == "${PAYROLL_URL}/v1/c1")
        #expect(jobs.first?.payload["body"] == ["n": 7, "fixed": 1])
        var notHired = event
        notHired.data = try JSONParser.parse(#"{"candidate": {"id": "c1", "status": {"group": 1}}}"#)
        #expect(m.plan(notHired, now: "") == .noMatch(reason: "when.if is false: candidate.status.group == 20"))
    }

    @Test func archiveFileNamePatternsAreCheckedAndRendered() throws {
        func archive(_ fileName: String) -> String {
            #"{"name": "m", "when": {"event": "candidate/new"}, "archive": {"files": {"cv": "{{ candidate.files.cv }}"}, "file_name": "\#(fileName)"}}"#
        }
        let (mapping, diagnostics) = compile(archive("cv_{sha256_8}-{kind}.{ext}"))
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty, "\(diagnostics)")
        guard case .archive(let target) = try #require(mapping).target else {
            Issue.record("not an archive mapping")
            return
        }
        #expect(target.fileName.render(kind: "cover_letter", sha256: "0123456789abcdef0123", fileExtension: "pdf") == "cv_01234567-cover_letter.pdf")
        #expect(
            ArchiveFileName.standard.render(kind: "cv", sha256: String(repeating: "ab", count: 32), fileExtension: "docx")
                == "cv-abababababababab.docx")
        for (bad, message) in [
            ("{kind}.{ext}", "needs {sha256}"), ("{kind}/{sha256}", "may only hold"), ("{kind}-{sha}", "unknown placeholder {sha}"),
            ("{sha256", "unclosed"), (".{sha256}", "must not start with a dot"), ("../{sha256}", "may only hold"),
        ] {
            let (rejected, problems) = compile(archive(bad))
            #expect(rejected == nil, "\(bad)")
            let error = problems.first { $0.severity == .error }
            #expect(error?.message.contains(message) == true, "\(bad): \(problems)")
            #expect(error?.pointer == "/archive/file_name", "\(bad)")
        }
    }

    @Test func everyErrorIsListedWithItsPosition() {
        let text = """
            {
              "name": "Bad Name",
              "when": { "event": "candidate/new", "if": "candidate.status.group ==" },
              "extra": 1,
              "rest": { "url": "https://{{ company.settings.host }}/x", "method": "FETCH" },
              "csv": { "file": "x.csv", "columns": [] }
            }
            """
        let (mapping, diagnostics) = compile(text)
        #expect(mapping == nil)
        let lines = diagnostics.map(\.description)
        #expect(lines.contains { $0.hasPrefix("m.json:2:11: error: \"name\" may contain") })
        #expect(lines.contains { $0.hasPrefix("m.json:3:71: error: expected a value") })
        #expect(lines.contains { $0.hasPrefix("m.json:4:3: error: unknown key \"extra\"") })
        #expect(lines.contains { $0.contains("scheme and host must be fixed") })
        #expect(lines.contains { $0.contains("\"method\" must be one of") })
        #expect(lines.contains { $0.contains("exactly one target, found rest and csv") })
    }

    @Test func csvEncodingSettingsAreCheckedWithTheirPositions() throws {
        let text = """
            {
              "name": "hires", "when": { "event": "candidate/new" },
              "csv": { "file": "x.csv", "columns": [{ "name": "n", "value": "{{ candidate.id }}" }],
                       "encoding": "latin1", "bom": true, "replacement": "ab",
                       "unencodable": "drop" }
            }
            """
        let lines = compile(text, file: "hires.json").1.map(\.description)
        #expect(lines.contains { $0.hasPrefix("hires.json:4:41: error: \"bom\" is a UTF-8 byte order mark; iso-8859-1 files have none") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("hires.json:4:62: error: \"replacement\" must be one printable ASCII character") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("hires.json:5:27: error: \"unencodable\" must be one of") }, "\(lines)")
        let good = """
            {"name": "hires", "when": {"event": "candidate/new"},
             "csv": {"file": "x.csv", "columns": [{"name": "n", "value": "{{ candidate.id }}"}],
                     "encoding": "windows-1252", "unencodable": "replace", "replacement": "_"}}
            """
        let (mapping, diagnostics) = compile(good, file: "hires.json")
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty, "\(diagnostics)")
        guard case .csv(let csv)? = mapping?.target else {
            Issue.record("not a csv mapping")
            return
        }
        #expect(csv.encoding == .windows1252 && csv.unencodable == .replace(UInt8(ascii: "_")))
    }

    @Test func columnsInsideStringsFollowEscapes() {
        let text = #"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "body": {"a": "\"q\" \u00e9 {{ job.id | nope }}"}}}"#
        let (_, diagnostics) = compile(text)
        let error = diagnostics.first { $0.message.contains("unknown filter 'nope'") }
        let column = Array(text.unicodeScalars).indices.first { i in
            String(String.UnicodeScalarView(Array(text.unicodeScalars)[i...].prefix(4))) == "nope"
        }
        #expect(error?.column == column.map { $0 + 1 })
    }

    @Test func malformedJSONIsReportedWithThePosition() {
        let (_, diagnostics) = compile("{\n  \"name\": \"m\",\n}")
        #expect(diagnostics.first?.description == "m.json:2:14: error: trailing comma is not allowed here (at /name)")
    }

    @Test func fileNameMustMatchTheMappingName() {
        let (_, diagnostics) = compile(valid, file: "mappings/other.json")
        #expect(diagnostics.contains { $0.message.contains("must be named m.json") })
    }

    @Test func unknownPathsAreWarningsNotErrors() {
        let text =
            #"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "body": {"a": "{{ jbo.id }}", "b": "{{ job.titel }}"}}}"#
        let (mapping, diagnostics) = compile(text)
        #expect(mapping != nil)
        #expect(diagnostics.filter { $0.severity == .warning }.count == 2)
    }

    @Test func crossReferencesAreChecked() throws {
        let a = try #require(
            compile(
                #"{"name": "a", "when": {"event": "job/new"}, "after": "zzz", "on_repeat": "yyy", "rest": {"url": "https://x/y"}}"#, file: "a.json"
            ).0)
        let diagnostics = MappingSet.crossCheck([a, a])
        #expect(diagnostics.contains { $0.message.contains("duplicate mapping name") })
        #expect(diagnostics.contains { $0.message.contains("\"after\" names an unknown mapping \"zzz\"") })
        #expect(diagnostics.contains { $0.message.contains("\"on_repeat\"") })
    }

    @Test func unknownEventNamesAreErrorsWithTheKnownOnes() {
        let (mapping, diagnostics) = compile(
            #"{"name": "m", "when": {"event": ["candidate/new", "candidate/hired"]}, "rest": {"url": "https://x/y"}}"#)
        #expect(mapping == nil)
        let error = diagnostics.first { $0.severity == .error }
        #expect(error?.message.contains("unknown event \"candidate/hired\"") == true, "\(diagnostics)")
        #expect(error?.message.contains("candidate/new") == true)
        #expect(error?.pointer == "/when/event/1")
    }

    @Test func afterMayNotNameItselfNorGoRoundInACycle() throws {
        func mapping(_ name: String, after: String) throws -> MappingFile {
            try #require(
                compile(
                    #"{"name": "\#(name)", "when": {"event": "job/new"}, "after": "\#(after)", "rest": {"url": "https://x/y"}}"#, file: "\(name).json"
                ).0)
        }
        let selfish = MappingSet.crossCheck([try mapping("a", after: "a")])
        #expect(selfish.map(\.message) == ["\"after\" names the mapping itself: its jobs would wait for themselves forever"])
        let cycle = MappingSet.crossCheck([try mapping("b", after: "c"), try mapping("c", after: "d"), try mapping("d", after: "b")])
        #expect(cycle.map(\.message) == ["\"after\" goes round in a cycle: b → c → d → b; every job in it would wait forever"])
        #expect(cycle.first?.file == "b.json")
    }

    @Test func responseIsReadOnlyWhereItHasAValueAndOnlyWhatTheOtherMappingCaptures() throws {
        let condition = compile(
            #"{"name": "m", "when": {"event": "job/new", "if": "response.id"}, "after": "p", "rest": {"url": "https://x/y"}}"#)
        #expect(condition.1.contains { $0.severity == .error && $0.message.hasPrefix("'response' has no value here") && $0.pointer == "/when/if" })
        let noAfter = compile(#"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "body": {"e": "{{ response.id }}"}}}"#)
        #expect(noAfter.1.contains { $0.severity == .error && $0.message.contains("needs \"after\"") && $0.pointer == "/rest/body/e" })
        let payroll = try #require(
            compile(
                #"{"name": "p", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "capture": {"employee_id": "{{ response.body.id }}"}}}"#,
                file: "p.json"
            ).0)
        let card = try #require(
            compile(
                #"{"name": "card", "when": {"event": "job/new"}, "after": "p", "rest": {"url": "https://x/{{ response.employee_id }}", "body": {"e": "{{ response.employe_id }}"}}}"#,
                file: "card.json"
            ).0)
        let diagnostics = MappingSet.crossCheck([payroll, card])
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.message == "response.employe_id: p captures no \"employe_id\"; it captures employee_id")
        #expect(diagnostics.first?.pointer == "/rest/body/e")
        #expect(diagnostics.first?.file == "card.json")
    }

    @Test func anAfterRequestThatRequiresTheResponsePlansAndRendersOnceTheResponseIsThere() throws {
        let card = try #require(
            compile(
                #"{"name": "card", "when": {"event": "job/new"}, "after": "p", "effect_key": "{{ job.id }}", "rest": {"url": "https://x/{{ response.employee_id | required }}"}}"#,
                file: "card.json"
            ).0)
        let event = MappingEvent(type: "job", action: "new", data: ["job": ["id": 3]], receivedAt: "", entityKey: "k")
        guard case .planned(let planned) = card.plan(event, now: "") else {
            Issue.record("an after mapping that reads the response failed when planned")
            return
        }
        #expect(planned.first?.effectKey == "3")
        guard case .planned(let sent) = card.plan(event, now: "", extra: ["response": ["employee_id": "E-7"]]) else {
            Issue.record("not rendered with the response")
            return
        }
        #expect(sent.first?.payload["url"] == "https://x/E-7")
        guard case .failed(let message) = card.plan(event, now: "", extra: ["response": [:]]) else {
            Issue.record("a missing required response value did not fail")
            return
        }
        #expect(message.hasPrefix("card: rest.url: ") && message.contains("response.employee_id"), "\(message)")
    }

    @Test func aFlowsStepsReadOnlyWhatEarlierStepsCapture() {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"}, "effect_key": "{{ candidate.id }}", "flow": {"steps": [
              {"name": "person", "url": "https://hr/p", "body": {"m": "{{ steps.employee.employee_id }}"},
               "capture": {"person_id": "{{ response.body.id }}"}, "outcomes": [{"if": "response.status == 409", "then": "already_done"}]},
              {"name": "audit", "url": "https://hr/a", "body": {"capture": "{{ response.id }}"}, "capture": {"x": "{{ steps.person.person_id }}"}},
              {"name": "employee", "if": "steps.person.outcome == 'already_done'", "url": "https://hr/e/{{ steps.person.persn_id }}",
               "body": {"r": "{{ response.status }}"}, "capture": {"employee_id": "{{ response.body.id }}"}},
              {"name": "employee", "url": "https://hr/x", "outcomes": [{"if": "response.status == 200", "then": "maybe"}]}
            ], "on_failure": {"url": "https://jobylon/card", "body": {"s": "{{ failure.step }}"}}}}
            """#
        let (mapping, diagnostics) = compile(text)
        #expect(mapping == nil)
        let messages = diagnostics.filter { $0.severity == .error }.map(\.message)
        #expect(messages.contains("steps.employee: no earlier step is named \"employee\"; no step runs before this one"), "\(messages)")
        #expect(messages.contains("steps.person.persn_id: step person captures no \"persn_id\"; it provides person_id, outcome"))
        #expect(messages.contains { $0.hasPrefix("'response' has no value here") })
        #expect(messages.contains("duplicate step name \"employee\""))
        #expect(messages.contains("'steps' has no value in capture and outcomes: they read the answer (response) and the event, not other steps"))
        #expect(
            messages.filter { $0.hasPrefix("'response' has no value here") }.count == 2, "a body key named capture is no capture: \(messages)")
        #expect(messages.contains { $0.hasPrefix("\"then\" must be one of \"success\", \"retry\", \"fail\", \"already_done\", \"finish\"") })
        #expect(!messages.contains { $0.contains("failure") }, "failure is known in on_failure")
    }

    @Test func aStepMarkedReadOnlyIsSafeToResendWhateverItsMethod() throws {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"}, "flow": {"steps": [
              {"name": "search", "method": "POST", "url": "https://hr/search", "read_only": true, "body": {"q": "x"}},
              {"name": "create", "method": "POST", "url": "https://hr/people", "body": {"q": "x"}},
              {"name": "read", "method": "GET", "url": "https://hr/people/1"}
            ]}}
            """#
        let (mapping, diagnostics) = compile(text)
        guard case .flow(let flow)? = mapping?.target else {
            Issue.record("\(diagnostics)")
            return
        }
        #expect(flow.steps.map(\.isSafeToResend) == [true, false, true])
        let (_, wrong) = compile(text.replacingOccurrences(of: #""read_only": true"#, with: #""read_only": "yes""#))
        #expect(wrong.contains { $0.severity == .error && $0.pointer.hasSuffix("read_only") }, "\(wrong)")
    }

    @Test func aFlowPlansOneJobAndFailsAtPlanningOnWhatTheEventCannotGive() throws {
        let text = #"""
            {"name": "m", "when": {"event": "candidate/new"}, "effect_key": "{{ candidate.id }}", "flow": {"steps": [
              {"name": "person", "url": "https://hr/p", "query": {"email": "{{ candidate.email }}"}, "capture": {"id": "{{ response.body.id }}"}},
              {"name": "employee", "url": "https://hr/e", "body": {"p": "{{ steps.person.id | required }}", "iban": "{{ candidate.iban | iban }}"}}
            ]}}
            """#
        let m = try #require(compile(text).0)
        #expect(m.kind == "flow")
        let good = MappingEvent(
            type: "candidate", action: "new", data: ["candidate": ["id": "c1", "email": "a@b.se", "iban": "SE6281323143611896423859"]],
            receivedAt: "",
            entityKey: "k")
        guard case .planned(let jobs) = m.plan(good, now: "") else {
            Issue.record("a step reading an earlier step's capture failed at planning")
            return
        }
        #expect(jobs.count == 1)
        #expect(jobs.first?.payload["steps"] == ["person", "employee"])
        #expect(jobs.first?.payload["query"] == ["person.email": "a@b.se"], "what the runner masks by value")
        var bad = good
        bad.data = ["candidate": ["id": "c1", "iban": "SE6281323143611896423858"]]
        #expect(m.plan(bad, now: "") == .failed("m: flow.steps[employee].body.iban: iban: invalid IBAN: checksum does not match"))
        guard case .flow(let flow) = m.target, let employee = flow.steps.first(where: { $0.name == "employee" }) else { throw Failure() }
        let rendered = m.renderFlowStep(employee, event: good, steps: ["person": ["id": "P-1"]], now: "")
        #expect((try? rendered.get())?["body"]?["p"] == "P-1")
        #expect((try? rendered.get())?["idempotency_key"] == "m:c1:employee")
    }

    @Test func oauth2CredentialsAreVariablesOnlyWithAFixedTokenEndpoint() throws {
        func auth(_ oauth2: String) -> (MappingFile?, [MappingDiagnostic]) {
            compile(#"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "auth": {"oauth2": \#(oauth2)}}}"#)
        }
        let good = try #require(
            auth(#"{"token_url": "${HR_URL}/oauth/token", "client_id": "c", "client_secret": "${HR_SECRET}", "scope": "a b", "client_auth": "body"}"#)
                .0)
        guard case .rest(let rest) = good.target, case .oauth2ClientCredentials(let grant)? = rest.auth else { throw Failure() }
        #expect(
            grant
                == OAuth2ClientCredentials(
                    tokenURL: "${HR_URL}/oauth/token", clientID: "c", clientSecret: "${HR_SECRET}", scope: "a b", clientAuthentication: .body))
        #expect(good.requiredVariables.contains("HR_SECRET"))
        let messages = auth(#"{"token_url": "{{ job.url }}/token", "client_id": "{{ job.id }}"}"#).1.map(\.message)
        #expect(messages.contains("\"token_url\" must start with https://, http:// or a ${VARIABLE} holding it"), "\(messages)")
        #expect(messages.contains("\"client_id\" may use ${VARIABLES} only, no {{ expressions }}"))
        #expect(messages.contains("missing required key \"client_secret\""))
    }

    @Test func aRefreshTokenGrantNamesItsStoredCredential() throws {
        func auth(_ oauth2: String) -> (MappingFile?, [MappingDiagnostic]) {
            compile(#"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "auth": {"oauth2": \#(oauth2)}}}"#)
        }
        let good = try #require(
            auth(
                #"{"grant": "refresh_token", "credential": "fortnox", "token_url": "https://apps.fortnox.se/oauth-v1/token", "#
                    + #""authorization_url": "https://apps.fortnox.se/oauth-v1/auth", "client_id": "${FX_ID}", "client_secret": "${FX_SECRET}", "#
                    + #""scope": "salary", "refresh_token_lifetime": "45d"}"#
            ).0)
        guard case .rest(let rest) = good.target, case .oauth2RefreshToken(let grant)? = rest.auth else { throw Failure() }
        #expect(
            grant
                == OAuth2RefreshTokenGrant(
                    credential: "fortnox", tokenURL: "https://apps.fortnox.se/oauth-v1/token",
                    authorizationURL: "https://apps.fortnox.se/oauth-v1/auth",
                    clientID: "${FX_ID}", clientSecret: "${FX_SECRET}", scope: "salary", refreshTokenLifetimeSeconds: 45 * 86_400))
        #expect(good.refreshTokenGrants == [grant])
        #expect(Set(good.requiredVariables).isSuperset(of: ["FX_ID", "FX_SECRET"]))
        let messages = auth(
            #"{"grant": "refresh_token", "credential": "Fort Nox", "token_url": "https://t", "client_id": "c", "client_secret": "s", "#
                + #""audience": "a", "authorization_url": "{{ job.url }}", "refresh_token_lifetime": "soon"}"#
        ).1.map(\.message)
        #expect(messages.contains("a credential name may contain lower-case letters, digits, '-' and '_' only"), "\(messages)")
        #expect(messages.contains { $0.hasPrefix("unknown key \"audience\"") }, "client credentials only")
        #expect(messages.contains("\"authorization_url\" may use ${VARIABLES} only, no {{ expressions }}"))
        #expect(messages.contains { $0.hasPrefix("\"refresh_token_lifetime\" must be a duration") })
        let noName = auth(#"{"grant": "refresh_token", "token_url": "https://t", "client_id": "c", "client_secret": "s"}"#).1.map(\.message)
        #expect(noName.contains("missing required key \"credential\""))
        #expect(noName.contains { $0.hasPrefix("no \"refresh_token_lifetime\": unless the token endpoint says") }, "a warning: no expiry known")
        #expect(auth(#"{"grant": "password", "token_url": "https://t", "client_id": "c", "client_secret": "s"}"#).0 == nil)
    }

    @Test func oneCredentialNameBelongsToOneClientAcrossMappings() throws {
        func mapping(_ name: String, client: String) throws -> MappingFile {
            let text =
                #"{"name": "\#(name)", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "auth": {"oauth2": {"grant": "refresh_token", "#
                + #""credential": "fortnox", "token_url": "https://t/token", "client_id": "\#(client)", "client_secret": "${S}"}}}}"#
            return try #require(compile(text, file: "\(name).json").0)
        }
        #expect(MappingSet.crossCheck([try mapping("a", client: "c1"), try mapping("b", client: "c1")]).isEmpty)
        let clash = MappingSet.crossCheck([try mapping("a", client: "c1"), try mapping("b", client: "c2")]).map(\.message)
        #expect(
            clash == [
                "credential \"fortnox\" is also used by mapping a with another token_url or client_id; one stored credential belongs to one client"
            ])
    }

    @Test func aConnectorPackIsLoadedOnlyWhenNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-packs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/connectors/acme", withIntermediateDirectories: true)
        try #"{"name": "acme-employee", "when": {"event": "candidate/new"}, "rest": {"url": "https://acme.example/e"}}"#
            .write(toFile: directory + "/connectors/acme/acme-employee.json", atomically: true, encoding: .utf8)
        #expect(MappingSet.load(directory: directory, variables: VariableSource(environment: [:])).0.mappings.isEmpty)
        let (set, diagnostics) = MappingSet.load(directory: directory, connectors: ["acme"], variables: VariableSource(environment: [:]))
        #expect(set.mappings.map(\.name) == ["acme-employee"] && diagnostics.isEmpty)
        try FileManager.default.createDirectory(atPath: directory + "/connectors/empty", withIntermediateDirectories: true)
        for name in ["nope", "../connectors/acme", "..", "", "Acme", "empty"] {
            let unknown = MappingSet.load(directory: directory, connectors: [name], variables: VariableSource(environment: [:])).1.map(\.message)
            #expect(unknown == ["unknown connector \"\(name)\": no directory connectors/\(name) with mapping files"])
        }
    }

    @Test func limitsTakeARatePerWindowAConcurrencyAndABreaker() throws {
        #expect(RequestLimits.rate("10/min").map { [$0.count, $0.windowSeconds] } == [10, 60])
        #expect(RequestLimits.rate("25/5s").map { [$0.count, $0.windowSeconds] } == [25, 5])
        #expect(RequestLimits.rate("25 per 5s").map { [$0.count, $0.windowSeconds] } == [25, 5])
        #expect(RequestLimits.rate("100/1h").map { [$0.count, $0.windowSeconds] } == [100, 3600])
        #expect(RequestLimits.rate("ten/min") == nil)
        #expect(RequestLimits.rate("5/0s") == nil)
        let text = #"""
            {"name": "m", "when": {"event": "job/new"}, "flow": {"limits": {"rate": "10/min", "per": "company", "breaker_after": 3, "breaker_open": "1m", "throttle_pause": "5s"},
             "steps": [{"name": "a", "url": "https://x/a"}, {"name": "b", "url": "https://x/b", "limits": {"concurrency": 2}}]}}
            """#
        let m = try #require(compile(text).0)
        guard case .flow(let flow) = m.target else { throw Failure() }
        #expect(flow.steps[0].request.limits.rate.map { [$0.count, $0.windowSeconds] } == [10, 60])
        #expect(flow.steps[0].request.limits.per == .company)
        #expect(flow.steps[0].request.limits.breakerOpenSeconds == 60)
        #expect(flow.steps[0].request.limits.throttlePauseSeconds == 5)
        #expect(flow.steps[1].request.limits.concurrency == 2 && flow.steps[1].request.limits.rate == nil, "a step's own limits replace the flow's")
        let bad = compile(#"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "limits": {"rate": "lots", "per": "moon"}}}"#)
        #expect(bad.1.contains { $0.message.hasPrefix("\"rate\" must be a count per window") && $0.pointer == "/rest/limits/rate" })
        #expect(bad.1.contains { $0.message.hasPrefix("\"per\" must be one of") })
    }

    struct Failure: Error {}

    @Test func base64EncodesTextStandardOrURLSafe() throws {
        let m = try #require(
            compile(
                #"{"name": "m", "when": {"event": "job/new"}, "rest": {"url": "https://x/y", "body": {"s": "{{ job.q | base64 }}", "u": "{{ job.q | base64: 'url' }}"}}}"#
            ).0)
        let event = MappingEvent(type: "job", action: "new", data: ["job": ["q": "name eq 'Åsa'?>"]], receivedAt: "", entityKey: "k")
        guard case .planned(let jobs) = m.plan(event, now: "") else {
            Issue.record("no plan")
            return
        }
        #expect(jobs.first?.payload["body"] == ["s": "bmFtZSBlcSAnw4VzYSc/Pg==", "u": "bmFtZSBlcSAnw4VzYSc_Pg"])
    }

    @Test func renderingErrorsNameMappingFieldAndPathButNoValue() throws {
        let text =
            #"{"name": "m", "when": {"event": "candidate/new"}, "rest": {"url": "https://x/y", "body": {"iban": "{{ candidate.data.iban | iban | required }}"}}}"#
        let m = try #require(compile(text).0)
        let data = try JSONParser.parse(#"{"candidate": {"data": {"iban": "SE6281323143611896423858"}}}"#)
        let result = m.plan(MappingEvent(type: "candidate", action: "new", data: data, receivedAt: "", entityKey: "k"), now: "")
        #expect(result == .failed("m: rest.body.iban: iban: invalid IBAN: checksum does not match"))
        // Nested objects and arrays: the whole path to the field, never the value.
        let nested = try #require(
            compile(
                #"{"name": "m", "when": {"event": "candidate/new"}, "rest": {"url": "https://x/y", "body": {"Employee": {"Bank": [{"ok": "x"}, {"Iban": "{{ candidate.data.iban | iban }}"}]}}}}"#
            ).0)
        let nestedResult = nested.plan(MappingEvent(type: "candidate", action: "new", data: data, receivedAt: "", entityKey: "k"), now: "")
        #expect(nestedResult == .failed("m: rest.body.Employee.Bank.1.Iban: iban: invalid IBAN: checksum does not match"))
    }

    @Test("random mapping files never crash the compiler", arguments: 0..<200)
    func fuzzCompiler(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 999)
        var bytes = Array(valid.utf8)
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[at] = Array("{}[]\":,|'$ a1".utf8).randomElement(using: &rng) ?? 0x20
        }
        _ = MappingCompiler.compile(file: "m.json", bytes: bytes)
    }
}
