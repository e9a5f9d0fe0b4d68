import Foundation
import Synchronization
import Testing

@testable import StoreSQLite

@Suite("Commit wake-ups")
struct CommitHandlersTests {
    /// The writer announces every commit. When the handlers were bare optional
    /// closures in a `Mutex`, each read through `withLock`'s `inout` wrapped the
    /// stored closure in two more reabstraction thunks: calls grew slower with
    /// every commit and the chain overflowed the writer thread's stack. Here the
    /// same path runs on a thread with a 256 KiB stack, where the old code
    /// overflowed after a few thousand commits; 50,000 must all arrive.
    @Test func announcingManyCommitsNeitherGrowsTheHandlerNorTheStack() async throws {
        let fixture = try StoreFixture()
        let jobs = Atomic<Int>(0)
        let events = Atomic<Int>(0)
        fixture.store.setJobsCommittedHandler { jobs.add(1, ordering: .relaxed) }
        fixture.store.setEventsQueuedHandler { events.add(1, ordering: .relaxed) }

        let commits = 50_000
        let store = fixture.store
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                for index in 0..<commits {
                    store.announceCommit(createdJobs: true, queuedEvents: index.isMultiple(of: 2))
                }
                done.resume()
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
        #expect(jobs.load(ordering: .relaxed) == commits)
        #expect(events.load(ordering: .relaxed) == commits / 2)
    }

    @Test func aReplacedHandlerIsTheOneCalled() throws {
        let fixture = try StoreFixture()
        let calls = Mutex<[String]>([])
        fixture.store.setEventsQueuedHandler { calls.withLock { $0.append("first") } }
        fixture.store.announceCommit(createdJobs: false, queuedEvents: true)
        fixture.store.setEventsQueuedHandler { calls.withLock { $0.append("second") } }
        fixture.store.announceCommit(createdJobs: false, queuedEvents: true)
        fixture.store.announceCommit(createdJobs: true, queuedEvents: false)
        #expect(calls.withLock { $0 } == ["first", "second"])
    }
}
