import Clocks
import JSON
import Mapping

/// The effect ledger's rules: one delivered effect per (mapping, effect key).
/// The store records deliveries and asks `decide` when it claims a job whose
/// key is already in the ledger; these rules live here, not in SQL.
public enum EffectLedger {
    /// What to do with a claimed job.
    public enum Decision: Sendable, Hashable {
        /// Run the job as it is.
        case run
        /// The effect exists: the job is `skipped`, pointing at the job that delivered it.
        case skip(deliveredBy: Int64)
        /// Run the other mapping's rendering instead (an update), sent as a repeat.
        case runAlternative(mapping: String, kind: String, payload: [UInt8], mappingHash: String?)
    }

    /// The repeat policy as the store keeps it beside the job.
    public enum StoredPolicy: Sendable, Hashable {
        case skip
        case send
        case alternative(mapping: String, kind: String, payload: [UInt8], mappingHash: String?)
    }

    /// Kinds whose own store decides what a repeat means, so the ledger must
    /// not skip them: a CSV row is staged per row key until its period is
    /// exported (the last received wins), and after that the mapping's
    /// `on_resend` decides.
    public static func consultsLedger(kind: String) -> Bool {
        kind != "csv"
    }

    /// The idempotency key of a forced replay (`replay --force`): a new one, so
    /// a downstream that deduplicates by key takes the resend as a new
    /// delivery. Stored request text (`StoredText`): event data's `$` doubled.
    public static func forcedResendKey(mapping: String, effectKey: String, at now: Timestamp) -> String {
        StoredText.escape("\(mapping):\(effectKey):replay-\(now.milliseconds)")
    }

    /// `deliveredBy`: the job recorded in the ledger for the claimed job's
    /// (mapping, effect key), if any.
    public static func decide(jobID: Int64, kind: String, deliveredBy: Int64?, policy: StoredPolicy) -> Decision {
        guard consultsLedger(kind: kind), let deliveredBy, deliveredBy != jobID else { return .run }
        switch policy {
        case .send: return .run
        case .skip: return .skip(deliveredBy: deliveredBy)
        case .alternative(let mapping, let kind, let payload, let hash):
            return .runAlternative(mapping: mapping, kind: kind, payload: payload, mappingHash: hash)
        }
    }

    /// Mappings whose own jobs are not planned for an event: when mapping A
    /// matches and names B in `on_repeat`, B's rendering travels with A's job
    /// and runs only if A's effect already exists (a hand re-send). Planning B
    /// as well would send B on the first delivery too, and twice on a re-send.
    ///
    /// `matching`: each matching mapping's name and the mapping its `on_repeat` names, if any.
    public static func suppressedByRepeat(matching: [(name: String, onRepeatMapping: String?)]) -> Set<String> {
        let names = Set(matching.map(\.name))
        var suppressed: Set<String> = []
        for mapping in matching {
            if let other = mapping.onRepeatMapping, other != mapping.name, names.contains(other) { suppressed.insert(other) }
        }
        return suppressed
    }
}
