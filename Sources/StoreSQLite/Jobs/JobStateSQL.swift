import Domain

/// Domain values rendered into SQL text.
///
/// Most values are bound as parameters. Job states that select a partial
/// index (`jobs_pending_due`, `jobs_running`, `jobs_effect_open`, ...) must be
/// literals in the query text instead: SQLite uses a partial index only when
/// the query's WHERE clause contains the index's own terms, which a bound
/// parameter never matches (the planner would scan every job). The states
/// still come from `JobState`; `SchemaIndexTests` checks that the schema's
/// indexes and these renderings agree, so the queries keep their plans.
enum SQL {
    /// `'pending'`.
    static func literal(_ state: JobState) -> String {
        "'\(state.rawValue)'"
    }

    /// `('pending', 'running')`, in the order given (it must match the index's text).
    static func list(_ states: [JobState]) -> String {
        "(" + states.map(literal).joined(separator: ", ") + ")"
    }
}
