import Clocks
import Domain
import GRDB

extension SQLiteStore: RefreshCredentialStore {
    static let credentialColumns = "name, company_id, refresh_token, expires_at, rotated_at, refresh_started_at, problem"

    static func credential(_ row: Row) -> RefreshCredential {
        RefreshCredential(
            name: row["name"], companyID: row["company_id"], refreshToken: row["refresh_token"],
            expiresAt: (row["expires_at"] as Int64?).map(Timestamp.init(milliseconds:)), rotatedAt: Timestamp(milliseconds: row["rotated_at"]),
            refreshStartedAt: (row["refresh_started_at"] as Int64?).map(Timestamp.init(milliseconds:)),
            problem: (row["problem"] as String?).flatMap(CredentialProblem.init(rawValue:)))
    }

    /// Whether the credential job `jobID`'s company uses (`RefreshCredential.choose`) can be used at `now`.
    func credentialIsUsable(db: Database, name: String, jobID: Int64, now: Timestamp) throws -> Bool {
        let company = try String.fetchOne(db, sql: "SELECT company_id FROM jobs WHERE id = ?", arguments: [jobID])
        let rows = try Row.fetchAll(
            db, sql: "SELECT \(SQLiteStore.credentialColumns) FROM oauth_credentials WHERE name = ?", arguments: [name]
        ).map(SQLiteStore.credential)
        return RefreshCredential.choose(rows, company: company).map { $0.problem(at: now) == nil } ?? false
    }

    /// On the reader connection.
    public func refreshCredentials(named name: String) async throws -> [RefreshCredential] {
        try await reader.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(SQLiteStore.credentialColumns) FROM oauth_credentials WHERE name = ? ORDER BY company_id", arguments: [name]
            ).map(SQLiteStore.credential)
        }
    }

    /// On the reader connection.
    public func allRefreshCredentials() async throws -> [RefreshCredential] {
        try await reader.read { db in
            try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.credentialColumns) FROM oauth_credentials ORDER BY name, company_id")
                .map(SQLiteStore.credential)
        }
    }

    /// Through the writer; returns once committed.
    public func markRefreshStarted(name: String, companyID: String, token: String, at: Timestamp) async throws -> Bool {
        try await writer.perform { db, _ in
            try db.execute(
                sql: "UPDATE oauth_credentials SET refresh_started_at = ? WHERE name = ? AND company_id = ? AND refresh_token = ?",
                arguments: [at.milliseconds, name, companyID, token])
            return db.changesCount == 1
        }
    }

    /// Through the writer; returns once committed. `secure_delete` overwrites
    /// the spent token's bytes in the page.
    public func recordRefresh(name: String, companyID: String, previous: String, next: String, expiresAt: Timestamp?, at: Timestamp)
        async throws -> Bool
    {
        try await writer.perform { db, _ in
            try db.execute(
                sql: """
                    UPDATE oauth_credentials SET refresh_token = ?, expires_at = COALESCE(?, expires_at), rotated_at = ?,
                        refresh_started_at = NULL, problem = NULL
                    WHERE name = ? AND company_id = ? AND refresh_token = ?
                    """,
                arguments: [next, expiresAt?.milliseconds, at.milliseconds, name, companyID, previous])
            return db.changesCount == 1
        }
    }

    /// Through the writer; returns once committed.
    public func clearRefreshMark(name: String, companyID: String, token: String) async throws {
        try await writer.perform { db, _ in
            try db.execute(
                sql: "UPDATE oauth_credentials SET refresh_started_at = NULL WHERE name = ? AND company_id = ? AND refresh_token = ?",
                arguments: [name, companyID, token])
        }
    }

    /// Through the writer; returns once committed.
    public func recordRefreshProblem(name: String, companyID: String, token: String, problem: CredentialProblem) async throws -> Bool {
        try await writer.perform { db, _ in
            try db.execute(
                sql: """
                    UPDATE oauth_credentials SET problem = ?, refresh_started_at = NULL
                    WHERE name = ? AND company_id = ? AND refresh_token = ? AND problem IS NULL
                    """,
                arguments: [problem.rawValue, name, companyID, token])
            return db.changesCount == 1
        }
    }

    /// Through the writer: the row and the released jobs in one commit. A job
    /// held for the name is released when its company now uses this row
    /// (`RefreshCredential.choose`: a company's own, or the shared one while no
    /// company has its own); which jobs wait for it is read from their
    /// `HoldReason`, not matched in SQL.
    public func storeAuthorized(_ credential: RefreshCredential, now: Timestamp) async throws -> Int {
        try await writer.perform { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO oauth_credentials (name, company_id, refresh_token, expires_at, rotated_at, refresh_started_at, problem)
                    VALUES (?, ?, ?, ?, ?, NULL, NULL)
                    ON CONFLICT (name, company_id) DO UPDATE SET refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                        rotated_at = excluded.rotated_at, refresh_started_at = NULL, problem = NULL
                    """,
                arguments: [
                    credential.name, credential.companyID, credential.refreshToken, credential.expiresAt?.milliseconds,
                    credential.rotatedAt.milliseconds,
                ])
            let held = try Row.fetchAll(
                db, sql: "SELECT id, company_id, hold_detail FROM jobs WHERE state = ? AND hold_reason = ?",
                arguments: [JobState.held.rawValue, HoldReason.Code.authorizationNeeded.rawValue])
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(SQLiteStore.credentialColumns) FROM oauth_credentials WHERE name = ?", arguments: [credential.name]
            ).map(SQLiteStore.credential)
            let pending = try JobState.held.after(.release).rawValue
            var released = 0
            for row in held {
                // Released when the job's company now uses this very row (the rule jobs choose by), not merely the name.
                guard
                    case .authorizationNeeded(let name, _)? = HoldReason(
                        code: HoldReason.Code.authorizationNeeded.rawValue, detail: row["hold_detail"]),
                    name == credential.name, RefreshCredential.choose(rows, company: row["company_id"])?.companyID == credential.companyID
                else { continue }
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, hold_reason = NULL, hold_detail = NULL, last_error = NULL, run_at = ?, updated_at = ?
                        WHERE id = ? AND state = ?
                        """,
                    arguments: [pending, now.milliseconds, now.milliseconds, row["id"] as Int64, JobState.held.rawValue])
                released += db.changesCount
            }
            return released
        }
    }
}
