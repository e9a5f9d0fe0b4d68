import JSON

/// A `flow` target: one hire handed to a downstream as an ordered list of
/// requests (find the manager, create the person, then the employee), each
/// seeing what the earlier ones captured as `steps.<step>.<capture>`.
///
/// One job runs the whole flow; the job engine checkpoints after every step,
/// so a crash resumes at the step that was running and a finished create is
/// never sent again (see `FlowProgress` in `Domain`).
public struct FlowTarget: Sendable {
    /// In order; names are unique.
    public var steps: [FlowStep]
    /// Sent once when the flow ends failed (e.g. a result card in Jobylon
    /// saying the hire did not reach payroll), with `failure` in scope.
    public var onFailure: FlowStep?
    /// Backoff and give-up limits of the flow's job (all steps together).
    public var retry: RetrySettings

    /// `steps` in order (names unique, as the compiler checks).
    public init(steps: [FlowStep], onFailure: FlowStep?, retry: RetrySettings) {
        self.steps = steps
        self.onFailure = onFailure
        self.retry = retry
    }

    /// A `rest` target as a flow of one step named after its mapping (what
    /// `try` sends for a single request).
    public init(singleRequest rest: RestTarget, named name: String) {
        self.init(steps: [FlowStep(name: name, condition: nil, conditionSource: nil, request: rest)], onFailure: nil, retry: rest.retry)
    }

}

/// One request of a flow.
public struct FlowStep: Sendable {
    /// Unique in the flow; what later steps read (`steps.<name>`) and the operator sees.
    public var name: String
    /// When set and false, the step is skipped (recorded as `skipped`).
    public var condition: Expression?
    /// The condition as written, for the reason shown when it skips.
    public var conditionSource: String?
    /// The request, its success codes, outcomes and captures.
    public var request: RestTarget

    /// The mapping says the step changes nothing whatever its method
    /// (`read_only`: a search that an API takes as a POST body).
    public var readOnly: Bool

    /// A step as the compiler builds it.
    public init(name: String, condition: Expression?, conditionSource: String?, request: RestTarget, readOnly: Bool = false) {
        self.name = name
        self.condition = condition
        self.conditionSource = conditionSource
        self.request = request
        self.readOnly = readOnly
    }

    /// Whether sending it twice is harmless: a read (GET, HEAD, or a step
    /// marked `read_only`) or a write to a downstream that deduplicates on the
    /// idempotency key. A crash while any other step is in flight parks the
    /// flow `in_doubt`.
    public var isSafeToResend: Bool {
        readOnly || request.method == "GET" || request.method == "HEAD" || request.honoursIdempotencyKey
    }
}

/// What an answer means, beyond its status code: a rule of a `rest` target or
/// of a flow step, tried in order before the default classification (after
/// a retryable status not in `success`, which is always retried).
public struct ResponseRule: Sendable {
    /// Over `response` (`status`, `headers`, `body`).
    public var condition: Expression
    /// As written, for the operator's reason.
    public var source: String
    /// What a match means.
    public var outcome: ResponseOutcome
}

/// How a step (or a `rest` job) ends for one answer.
public enum ResponseOutcome: String, Sendable, Hashable, CaseIterable {
    /// Delivered: captures are taken, the flow goes on.
    case success
    /// Try again later (like a 503).
    case retry
    /// Permanent: the job ends `dead` (like a 400).
    case fail
    /// The effect existed already (a "code must be unique" on a retried
    /// create): the step counts as done, its captures are taken from this
    /// answer where they can be, and later steps may look the record up.
    case alreadyDone = "already_done"
    /// The whole flow is already done (a lookup found the employee): the
    /// remaining steps are not sent.
    case finish
}

extension RestTarget {
    /// The first of `outcomes` whose condition holds for `response`, or
    /// `nil`: then the status decides (`DownstreamAnswers.rest` in `Domain`).
    /// A rule that cannot be evaluated does not match.
    /// In a flow, `scope` is the step's (`MappingFile.flowAnswerScope`): the
    /// event is then in scope too, so a rule can tell this hire's record from
    /// another's.
    public func matchingRule(_ response: JSONValue, in scope: EvaluationScope? = nil) -> ResponseRule? {
        guard !outcomes.isEmpty else { return nil }
        var scope = scope ?? EvaluationScope(data: .object(JSONObject()), event: .null, now: "")
        scope.names["response"] = response
        return outcomes.first { rule in (try? Evaluator.evaluate(rule.condition, in: scope)).map(Evaluator.truthy) ?? false }
    }

    /// The `capture` templates over `response`; a template that fails captures `null`.
    public func captures(from response: JSONValue) -> JSONObject {
        let scope = EvaluationScope(data: .object(JSONObject()), event: .null, now: "", extra: ["response": response])
        var captured = JSONObject()
        for item in capture { captured[item.name] = (try? item.value.render(in: scope)) ?? .null }
        return captured
    }

    /// `response` as templates see it: `status`, `headers` (lower-case names), `body` (parsed JSON, else text).
    public static func responseValue(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> JSONValue {
        var headerObject = JSONObject()
        for header in headers { headerObject[header.name.lowercased()] = .string(header.value) }
        let parsed = (try? JSONParser.parse(body, options: .payload)) ?? .string(String(decoding: body.prefix(4096), as: UTF8.self))
        return .object(
            JSONObject([
                .init(key: "status", value: .number(JSONNumber(Int64(status)))),
                .init(key: "headers", value: .object(headerObject)),
                .init(key: "body", value: parsed),
            ]))
    }
}

extension MappingFile {
    /// What a flow step's `capture` and `outcomes` see: the event as the
    /// step's request does, and `response` (set by the caller): so a lookup
    /// can pick what belongs to this hire from a list, and an outcome can tell
    /// this hire's record from another's.
    public func flowAnswerScope(event: MappingEvent, now: String) -> EvaluationScope {
        scope(for: event, now: now)
    }

    /// The `capture` templates of a flow step over its `response`, with the
    /// event in scope (`flowAnswerScope`); a template that fails captures `null`.
    public func flowCaptures(_ step: FlowStep, response: JSONValue, event: MappingEvent, now: String) -> JSONObject {
        var scope = flowAnswerScope(event: event, now: now)
        scope.names["response"] = response
        var captured = JSONObject()
        for item in step.request.capture { captured[item.name] = (try? item.value.render(in: scope)) ?? .null }
        return captured
    }

    /// Whether `step` runs for `event` with the earlier steps' results
    /// (`steps`: name → captures and outcome, as `FlowProgress.scopeValue` builds it).
    public func flowStepApplies(_ step: FlowStep, event: MappingEvent, steps: JSONValue, now: String) -> Result<Bool, EvaluationError> {
        guard let condition = step.condition else { return .success(true) }
        let scope = self.scope(for: event, now: now, extra: ["steps": steps])
        do {
            return .success(Evaluator.truthy(try Evaluator.evaluate(condition, in: scope)))
        } catch {
            return .failure(EvaluationError("flow.steps[\(step.name)].if: \(error.message)"))
        }
    }

    /// One step's request as a `rest` job stores it (`{method, url, headers,
    /// query, body, idempotency_key}`, `StoredText`), rendered with the earlier
    /// steps' results (and, for `on_failure`, the failure) in scope. The
    /// default key is `<mapping>:<effect key>:<step>`: each step its own.
    public func renderFlowStep(
        _ step: FlowStep, event: MappingEvent, steps: JSONValue, failure: JSONValue? = nil, keySuffix: String = "", now: String
    ) -> Result<JSONValue, EvaluationError> {
        var extra: [String: JSONValue] = ["steps": steps]
        if let failure { extra["failure"] = failure }
        let scope = self.scope(for: event, now: now, extra: extra)
        do {
            let key = try effectKeyText(in: scope, event: event)
            return .success(
                try renderRest(
                    step.request, key: key + ":" + step.name + keySuffix, eventID: event.id, scope: scope, label: "flow.steps[\(step.name)]"))
        } catch {
            return .failure(error)
        }
    }
}

extension MappingFile {
    /// The refresh-token grants this mapping sends with (its `rest` target,
    /// or its flow's steps and failure notice), for `oauth authorize` and the
    /// credential renewal.
    public var refreshTokenGrants: [OAuth2RefreshTokenGrant] {
        let requests: [RestTarget]
        switch target {
        case .rest(let rest): requests = [rest]
        case .flow(let flow): requests = flow.steps.map(\.request) + (flow.onFailure.map { [$0.request] } ?? [])
        case .csv, .archive: requests = []
        }
        var grants: [OAuth2RefreshTokenGrant] = []
        for request in requests {
            if case .oauth2RefreshToken(let grant)? = request.auth, !grants.contains(grant) { grants.append(grant) }
        }
        return grants
    }
}
