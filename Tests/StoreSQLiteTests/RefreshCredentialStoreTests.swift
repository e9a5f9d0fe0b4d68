import Clocks
import Domain
import Foundation
import GRDB
import Testing

@testable import StoreSQLite

@Suite("Stored OAuth2 refresh tokens: compare-and-set rotation, problems, release of held jobs")
struct RefreshCredentialStoreTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    func credential(_ token: String, company: String = "") -> RefreshCredential {
        RefreshCredential(name: "fortnox", companyID: company, refreshToken: token, expiresAt: t0.adding(.seconds(86_400)), rotatedAt: t0)
    }

    @Test func aRotationReplacesOnlyTheTokenItWasMadeWith() async throws {
        let store = try StoreFixture().store
        #expect(try await store.storeAuthorized(credential("rt-1"), now: t0) == 0)
        #expect(try await store.markRefreshStarted(name: "fortnox", companyID: "", token: "rt-1", at: t0))
        #expect(try await store.refreshCredentials(named: "fortnox").first?.refreshStartedAt == t0, "the mark survives in the store")
        // A refresh based on a token that is no longer current changes nothing.
        #expect(!(try await store.recordRefresh(name: "fortnox", companyID: "", previous: "rt-0", next: "rt-x", expiresAt: nil, at: t0)))
        #expect(
            try await store.recordRefresh(name: "fortnox", companyID: "", previous: "rt-1", next: "rt-2", expiresAt: nil, at: t0.adding(.seconds(5))))
        let rotated = try #require(try await store.refreshCredentials(named: "fortnox").first)
        #expect(rotated.refreshToken == "rt-2" && rotated.refreshStartedAt == nil && rotated.rotatedAt == t0.adding(.seconds(5)))
        #expect(rotated.expiresAt == t0.adding(.seconds(86_400)), "no new expiry keeps the old one")
        // A problem is recorded once, for the current token only; authorizing again clears it.
        #expect(!(try await store.recordRefreshProblem(name: "fortnox", companyID: "", token: "rt-1", problem: .rejected)))
        #expect(try await store.recordRefreshProblem(name: "fortnox", companyID: "", token: "rt-2", problem: .interrupted))
        #expect(!(try await store.recordRefreshProblem(name: "fortnox", companyID: "", token: "rt-2", problem: .rejected)), "once")
        #expect(try await store.refreshCredentials(named: "fortnox").first?.problem == .interrupted)
        _ = try await store.storeAuthorized(credential("rt-9"), now: t0)
        let fresh = try #require(try await store.allRefreshCredentials().first)
        #expect(fresh.refreshToken == "rt-9" && fresh.problem == nil)
    }

    @Test func authorizingReleasesTheJobsWhoseCompanyNowUsesThatCredential() async throws {
        let fixture = try StoreFixture()
        for n in 1...4 { _ = await fixture.ingest(candidate: "p\(n)", jobs: [("fx", "c:p\(n)", .rerun)], at: t0) }
        var claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(claimed.count == 4)
        let reasons: [HoldReason] = [
            .authorizationNeeded(credential: "fortnox", problem: .notAuthorized), .authorizationNeeded(credential: "fortnox", problem: .rejected),
            .authorizationNeeded(credential: "other", problem: .notAuthorized), .configuration("unrelated"),
        ]
        for (job, reason) in zip(claimed, reasons) {
            try await fixture.store.complete(jobID: job.id, owner: "A", completion: .held(reason), now: t0)
        }
        let (jobA, jobB) = (claimed[0].id, claimed[1].id)
        try await fixture.store.database.write { db in
            try db.execute(sql: "UPDATE jobs SET company_id = 'A' WHERE id = ?", arguments: [jobA])
            try db.execute(sql: "UPDATE jobs SET company_id = 'B' WHERE id = ?", arguments: [jobB])
        }
        // A shared credential releases every company's jobs of that name; other names and reasons stay held.
        #expect(try await fixture.store.storeAuthorized(credential("rt-s"), now: t0) == 2)
        #expect(try [jobA, jobB, claimed[2].id, claimed[3].id].map(fixture.state(of:)) == ["pending", "pending", "held", "held"])
        // An attempt that read the store before the authorization and ends held after it runs again instead.
        claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        #expect(Set(claimed.map(\.id)) == [jobA, jobB])
        for job in claimed {
            try await fixture.store.complete(
                jobID: job.id, owner: "A", completion: .held(.authorizationNeeded(credential: "fortnox", problem: .notAuthorized)), now: t0)
        }
        #expect(try [jobA, jobB].map(fixture.state(of:)) == ["pending", "pending"])
        // Refused: now they are held.
        #expect(try await fixture.store.recordRefreshProblem(name: "fortnox", companyID: "", token: "rt-s", problem: .rejected))
        claimed = try await fixture.store.claimDueJobs(owner: "A", now: t0, limit: 10, leaseUntil: t0.adding(.seconds(30)))
        for job in claimed {
            try await fixture.store.complete(
                jobID: job.id, owner: "A", completion: .held(.authorizationNeeded(credential: "fortnox", problem: .rejected)), now: t0)
        }
        #expect(try [jobA, jobB].map(fixture.state(of:)) == ["held", "held"])
        // Company A's own credential releases A's job only: B does not fall back to A's, and the shared
        // one is nobody's once a company has its own.
        #expect(try await fixture.store.storeAuthorized(credential("rt-a", company: "A"), now: t0) == 1)
        #expect(try [jobA, jobB].map(fixture.state(of:)) == ["pending", "held"])
        #expect(try await fixture.store.allRefreshCredentials().map(\.companyID) == ["", "A"])
    }

    @Test func theSpentTokenLeavesNoByteInTheDatabaseFile() async throws {
        let fixture = try StoreFixture()
        let spent = "rt-spent-0123456789abcdefghijklmnopqrstuvwxyz"
        _ = try await fixture.store.storeAuthorized(credential(spent), now: t0)
        #expect(try await fixture.store.recordRefresh(name: "fortnox", companyID: "", previous: spent, next: "rt-next", expiresAt: nil, at: t0))
        // The WAL holds the old page until a checkpoint writes the new one over it and the WAL starts over
        // (the daemon's maintenance does both); then neither file has the spent token.
        _ = try await fixture.store.database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        for file in ["bridge.sqlite", "bridge.sqlite-wal"] {
            let bytes = FileManager.default.contents(atPath: fixture.directory + "/" + file) ?? Data()
            #expect(bytes.range(of: Data(spent.utf8)) == nil, "\(file) still holds the spent refresh token")
        }
        #expect(FileManager.default.fileExists(atPath: fixture.directory + "/bridge.sqlite-wal"), "checked while the store is open")
    }
}
