import ArgumentParser
import BridgeApp
import Clocks
import Domain
import Foundation
import JSON
import Mapping

extension StoreOptions {
    /// The operator session for this command's configuration.
    func session() throws -> OperatorSession {
        try OperatorSession(configuration: configuration())
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, inspect and act on jobs (works while the daemon runs).",
        subcommands: [List.self, Show.self, Retry.self, Resolve.self, Cancel.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List jobs.", discussion: "States: pending, running, done, dead, expired, held, in_doubt, skipped, cancelled.")

        @OptionGroup var store: StoreOptions
        @Option(name: .long, help: "Only jobs in this state.") var state: String?
        @Option(name: .long, help: "Only jobs of this mapping.") var mapping: String?
        @Option(name: .long, help: "At most this many rows.") var limit: Int = 1000

        func run() throws {
            let session = try store.session()
            defer { session.close() }
            let sqlite = session.store
            print("id\tevent\tmapping\tstate\tattempts\teffect_key\tdetail")
            for job in try sqlite.jobs(state: state, mapping: mapping, limit: limit) {
                // Stored reasons were redacted when written; older rows get the pattern pass here.
                let detail = job.skippedFor.map { "skipped for job \($0)" } ?? job.lastError.map(Redactor.redactPatterns) ?? ""
                print("\(job.id)\t\(job.eventID)\t\(job.mapping)\t\(job.state)\t\(job.attempts)\t\(job.effectKey)\t\(detail)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job: its rendered request (no secrets), capture and attempts.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Job id.") var id: Int64

        func run() throws {
            let session = try store.session()
            defer { session.close() }
            let sqlite = session.store
            let job = try sqlite.job(id: id)
            print(
                "job \(job.summary.id) · event \(job.summary.eventID) · \(job.summary.mapping)\(job.item.isEmpty ? "" : "/" + job.item) (\(job.kind))"
            )
            print("state: \(job.summary.state)   attempts: \(job.summary.attempts)   effect key: \(job.summary.effectKey)")
            if let detail = job.summary.lastError { print("detail: \(Redactor.redactPatterns(detail))") }
            if let first = job.summary.skippedFor { print("skipped for job \(first)") }
            print("created: \(MappingClock.iso8601(milliseconds: job.createdAt))   next run: \(MappingClock.iso8601(milliseconds: job.runAt))")
            print("payload:")
            // The request's shape, not its personal values (IBANs, names, numbers are masked).
            let parsed = try? JSONParser.parse(Array(job.payload.utf8), options: .strict)
            let redactor = parsed.map { Redactor(payload: $0) } ?? Redactor()
            let pretty = parsed.map { JSONWriter.prettyString($0) } ?? job.payload
            print(redactor.redact(pretty))
            if let capture = job.capture { print("capture: \(Redactor.redactPatterns(capture))") }
            if let flow = job.flowProgress {
                // Ids the steps created, never personal data (masked by value and pattern all the same).
                print("steps:")
                for step in flow.steps {
                    let status = step.status.map { " HTTP \($0)" } ?? ""
                    let captured = step.captures.members.filter { !$0.value.isNull }.map {
                        "\($0.key)=\(redactor.redact(JSONValue.plainText($0.value)))"
                    }
                    print("  \(step.name): \(step.outcome.rawValue)\(status)\(captured.isEmpty ? "" : " · " + captured.joined(separator: ", "))")
                }
                if let failure = flow.failure {
                    print("  \(failure.step): failed — \(redactor.redact(failure.reason))\(failure.noticeSent ? " (on_failure sent)" : "")")
                } else if let next = flow.next {
                    print(
                        "  \(next): \(job.summary.state == "running" ? "in flight" : job.summary.state == "in_doubt" ? "in doubt (was in flight)" : "next")"
                    )
                }
            }
            for attempt in job.attempts {
                let detail = attempt.detail.map { " — " + redactor.redact($0) } ?? ""
                print("attempt \(attempt.attempt) at \(MappingClock.iso8601(milliseconds: attempt.finishedAt)): \(attempt.outcome)\(detail)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue dead, held, cancelled, in-doubt or set-aside jobs again (same request, same key).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Job id.") var id: Int64?
        @Flag(help: "Every dead job (of --mapping, if given).") var dead = false
        @Option(name: .long, help: "With --dead: only this mapping.") var mapping: String?

        func validate() throws {
            guard (id == nil) == dead else { throw ValidationError("give a job id or --dead") }
        }

        func run() async throws {
            let session = try store.session()
            defer { session.close() }
            let sqlite = session.store
            let ids = try id.map { [$0] } ?? sqlite.jobIDs(state: "dead", mapping: mapping)
            let queued = try await sqlite.retry(jobIDs: ids, now: session.now)
            print("\(queued) job(s) queued again")
            if queued < ids.count {
                print("\(ids.count - queued) job(s) wait for the job they run after to succeed (`jobs show` says which)")
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide an in-doubt job: it reached the downstream (--delivered) or not (--not-delivered, resent with the same key).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Job id.") var id: Int64
        @Flag(help: "The downstream has it: record it as delivered.") var delivered = false
        @Flag(help: "The downstream does not have it: send it again.") var notDelivered = false
        @Option(
            name: .customLong("capture"),
            help: ArgumentHelp(
                "With --delivered: a value the downstream created, as its mapping's capture would have taken it (e.g. employee_id=E-42); "
                    + "repeat for several. The jobs that run after this one read them as response.NAME.", valueName: "name=value"))
        var captures: [String] = []

        func validate() throws {
            guard delivered != notDelivered else { throw ValidationError("give exactly one of --delivered or --not-delivered") }
            guard captures.isEmpty || delivered else { throw ValidationError("--capture goes with --delivered") }
            _ = try capture()
        }

        /// `--capture` pairs as the capture object (text values; the name as a mapping's capture names it).
        func capture() throws -> JSONValue? {
            guard !captures.isEmpty else { return nil }
            var object = JSONObject()
            for pair in captures {
                guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                    throw ValidationError("--capture takes name=value, e.g. employee_id=E-42")
                }
                object[String(pair[..<equals])] = .string(String(pair[pair.index(after: equals)...]))
            }
            return .object(object)
        }

        func run() async throws {
            let session = try store.session()
            defer { session.close() }
            let sqlite = session.store
            try await sqlite.resolve(jobID: id, delivered: delivered, capture: try capture(), now: session.now)
            print("job \(id) resolved: \(delivered ? "delivered" : "to be sent again")")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job that has not run to an end (it will not be sent).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Job id.") var id: Int64

        func run() async throws {
            let session = try store.session()
            defer { session.close() }
            let sqlite = session.store
            try await sqlite.cancel(jobID: id, now: session.now)
            print("job \(id) cancelled")
        }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Route stored events through the current mappings (works while the daemon runs).",
        discussion: """
            New mappings get new jobs; dead or cancelled jobs are rendered again under the same effect and \
            idempotency key; delivered effects are skipped unless --force, which sends them again with a new \
            idempotency key (loudly: payroll may create a duplicate).
            """
    )

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "One event id.") var event: Int64?
    @Option(name: .long, help: ArgumentHelp("Events received at or after this time (ISO-8601, UTC if no zone).", valueName: "time")) var since:
        String?
    @Option(name: .long, help: ArgumentHelp("Events received before this time.", valueName: "time")) var until: String?
    @Option(name: .long, help: "Only jobs of this mapping.") var mapping: String?
    @Option(name: .long, help: ArgumentHelp("Mappings directory (default: the configuration's).", valueName: "dir")) var mappings: String?
    @Flag(help: "Send already delivered effects again, with a new idempotency key.") var force = false

    func validate() throws {
        guard (event == nil) != (since == nil) else { throw ValidationError("give --event ID or --since TIME") }
    }

    func run() async throws {
        let session = try store.session()
        defer { session.close() }
        func time(_ text: String) throws -> Timestamp {
            guard let ms = MappingClock.milliseconds(fromISO8601: text) else { throw ValidationError("not a time: \(text)") }
            return Timestamp(milliseconds: ms)
        }
        let selection: OperatorSession.ReplaySelection
        if let event {
            selection = .event(event)
        } else {
            selection = .received(since: try time(since ?? ""), until: try until.map(time))
        }
        let set = try refusing { () throws(OperatorFailure) in try session.mappings(directory: mappings) { print($0) } }
        if force { FileHandle.standardError.write(Data("warning: --force sends delivered effects again with new idempotency keys\n".utf8)) }
        let count = try await session.replay(selection, mappings: set, onlyMapping: mapping, force: force) { line in
            print("event \(line.eventID)\t\(line.job)\t\(line.action)")
        }
        print("\(count) event(s) replayed")
    }
}
