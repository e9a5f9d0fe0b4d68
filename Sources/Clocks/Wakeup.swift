import Synchronization

/// A level-triggered wake-up: `signal()` from anywhere, `wait()` in one loop.
/// Signals that arrive while nobody waits are remembered (once), so a commit
/// between two claims is never missed.
public final class Wakeup: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the waiting loop, or, when none waits, makes its next `wait()` return at
    /// once; signals before a wait collapse into one. Safe from any thread or task.
    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one is pending); also returns when cancelled.
    /// One waiter at a time: a second concurrent `wait()` takes the first one's place,
    /// and the first then never resumes.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signalled || Task.isCancelled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }

    /// Returns at the next signal or when `clock` reaches `deadline`,
    /// whichever comes first; the timer is a child task, gone when this returns.
    public func wait(until deadline: Timestamp, on clock: any WallClock) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(until: deadline) }
            group.addTask { await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}
