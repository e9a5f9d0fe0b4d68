import Clocks
import Foundation
import GRDB
import Testing

@testable import StoreSQLite

@Suite("WAL maintenance")
struct WALMaintenanceTests {
    @Test func policyLeavesASmallWALAloneCopiesInTheBackgroundThenFinishesOnTheWriter() {
        var policy = WALPolicy(maxWALBytes: 40 << 20)  // 10,240 frames
        policy.writerFrames = 100
        policy.maxBackgroundRounds = 3
        #expect(policy.restartAbove == 10_240)
        // Small WAL: it starts over on its own in a quiet moment.
        #expect(policy.next(after: WALProgress(frames: 10_240, backfilled: 0), backgroundRounds: 1) == .done)
        // Large, much left: another background pass, up to the round limit.
        #expect(policy.next(after: WALProgress(frames: 20_000, backfilled: 15_000), backgroundRounds: 1) == .checkpointAgain)
        #expect(policy.next(after: WALProgress(frames: 20_000, backfilled: 15_000), backgroundRounds: 3) == .done)
        // Large, little left: the writer finishes it between two commits.
        #expect(policy.next(after: WALProgress(frames: 20_000, backfilled: 19_900), backgroundRounds: 1) == .finishOnWriter)
        #expect(policy.next(after: WALProgress(frames: 20_000, backfilled: 20_000), backgroundRounds: 6) == .finishOnWriter)
        #expect(WALProgress(frames: 5, backfilled: 9).remaining == 0)
    }

    /// A checkpoint finished by the writer reaches the WAL's end, so the next
    /// commit starts the WAL over (its frame count drops back) instead of
    /// appending: the WAL stops growing.
    @Test func aCheckpointFinishedOnTheWriterLetsTheNextCommitStartTheWALOver() async throws {
        let fixture = try StoreFixture()
        for index in 0..<60 {
            _ = await fixture.ingest(candidate: "c\(index)", jobs: [], at: Timestamp(seconds: 1_800_000_000))
        }
        let before = try await fixture.store.writer.finishCheckpoint()
        #expect(before.frames > 60)
        #expect(before.backfilled == before.frames)

        _ = await fixture.ingest(candidate: "after", jobs: [], at: Timestamp(seconds: 1_800_000_001))
        let after = try await fixture.store.checkpoint()
        #expect(after.frames > 0)
        #expect(after.frames < before.frames)
        // Everything is still there.
        #expect(try fixture.store.countRows("inbox") == 61)
    }

    @Test func maintenanceKeepsTheWALUnderItsBoundWhileWritesContinue() async throws {
        let fixture = try StoreFixture()
        var policy = WALPolicy(maxWALBytes: 64 * 4096)  // restart above 64 frames
        policy.writerFrames = 1_000
        let store = fixture.store
        let writes = Task {
            for index in 0..<400 {
                _ = await fixture.ingest(candidate: "w\(index)", jobs: [], at: Timestamp(seconds: 1_800_000_000))
            }
        }
        while try store.countRows("inbox") < 400 {
            try await store.maintainWAL(policy: policy)
        }
        await writes.value
        let last = try await store.maintainWAL(policy: policy)
        // 400 webhooks wrote well over a thousand frames; the WAL started over on the way.
        #expect(last.frames < 1_000)
        #expect(try store.countRows("inbox") == 400)
    }
}
