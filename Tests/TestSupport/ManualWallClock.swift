import Clocks
import Synchronization

/// A clock that only moves when told to. Sleepers wake when `advance` passes
/// their deadline, in deadline order; nothing here fakes what it measures.
public final class ManualWallClock: WallClock {
    struct Sleeper {
        var id: Int
        var deadline: Timestamp
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var now: Timestamp
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    public init(now: Timestamp = Timestamp(seconds: 1_767_225_600)) {
        state = Mutex(State(now: now))
    }

    public func now() -> Timestamp {
        state.withLock { $0.now }
    }

    /// How many tasks are waiting in `sleep(until:)`.
    public var sleeperCount: Int {
        state.withLock { $0.sleepers.count }
    }

    public func sleep(until deadline: Timestamp) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.now >= deadline || Task.isCancelled { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        advance(to: now().adding(duration))
    }

    public func advance(to target: Timestamp) {
        let due = state.withLock { state -> [Sleeper] in
            if target > state.now { state.now = target }
            let due = state.sleepers.filter { $0.deadline <= state.now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
