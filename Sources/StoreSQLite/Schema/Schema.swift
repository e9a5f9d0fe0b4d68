import Domain
import GRDB

/// Versioned schema. Every table that holds personal data carries its subject
/// keys (`company_id`, `subject_id`) so retention and erasure can find rows.
enum Schema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-inbox-jobs-ledger") { db in
            // secure_delete is a per-connection setting (applied on every open);
            // it is repeated here so the first migration already runs under it.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(
                sql: """
                    CREATE TABLE inbox (
                        id INTEGER PRIMARY KEY,
                        body_sha256 BLOB NOT NULL UNIQUE,      -- transport-retry filter; outlives the body
                        received_at INTEGER NOT NULL,          -- unix ms
                        event_type TEXT NOT NULL,
                        action TEXT NOT NULL,
                        company_id TEXT,
                        subject_id TEXT,
                        lenient INTEGER NOT NULL DEFAULT 0,    -- relied on trailing commas
                        disposition TEXT NOT NULL,             -- routed | unrouted | parked
                        body BLOB,                             -- exactly as received; NULL once purged
                        body_purged_at INTEGER
                    );
                    CREATE INDEX inbox_received ON inbox(received_at);
                    CREATE INDEX inbox_subject ON inbox(company_id, subject_id);

                    CREATE TABLE quarantine (
                        id INTEGER PRIMARY KEY,
                        body_sha256 BLOB NOT NULL UNIQUE,
                        received_at INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        body BLOB,
                        body_purged_at INTEGER
                    );

                    CREATE TABLE jobs (
                        id INTEGER PRIMARY KEY,
                        event_id INTEGER NOT NULL REFERENCES inbox(id),
                        mapping TEXT NOT NULL,
                        item TEXT NOT NULL DEFAULT '',
                        kind TEXT NOT NULL,
                        effect_key TEXT NOT NULL,
                        company_id TEXT,
                        subject_id TEXT,
                        payload BLOB NOT NULL,                 -- rendered once, without secrets
                        mapping_hash TEXT NOT NULL,
                        crash_policy TEXT NOT NULL,            -- rerun | hold
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        run_at INTEGER NOT NULL,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        last_error TEXT,
                        skipped_for INTEGER REFERENCES jobs(id),
                        capture BLOB,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        UNIQUE (event_id, mapping, item)
                    );
                    CREATE INDEX jobs_due ON jobs(state, run_at);
                    CREATE INDEX jobs_effect ON jobs(mapping, effect_key, id);
                    CREATE INDEX jobs_subject ON jobs(company_id, subject_id);

                    CREATE TABLE job_attempts (
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        attempt INTEGER NOT NULL,
                        finished_at INTEGER NOT NULL,
                        outcome TEXT NOT NULL,
                        detail TEXT,
                        PRIMARY KEY (job_id, attempt)
                    );

                    -- The effect ledger: one row per delivered (mapping, effect key).
                    CREATE TABLE effects (
                        mapping TEXT NOT NULL,
                        effect_key TEXT NOT NULL,
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        completed_at INTEGER NOT NULL,
                        company_id TEXT,
                        subject_id TEXT,
                        PRIMARY KEY (mapping, effect_key)
                    );

                    CREATE TABLE companies (
                        id TEXT PRIMARY KEY,
                        internal_id TEXT,
                        name TEXT,
                        settings BLOB,
                        event_id INTEGER NOT NULL,
                        received_at INTEGER NOT NULL
                    );

                    -- Readiness probe: updated in place, so it needs no new pages.
                    CREATE TABLE probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
                    INSERT INTO probe(id, at) VALUES (1, 0);
                    """)
        }
        migrator.registerMigration("v2-claim-order-index") { db in
            // Claims read due jobs in (run_at, id) order and stop at LIMIT; with
            // id in the index no pending backlog is ever sorted.
            try db.execute(
                sql: """
                    DROP INDEX jobs_due;
                    CREATE INDEX jobs_due ON jobs(state, run_at, id);
                    """)
        }
        migrator.registerMigration("v3-on-repeat") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN on_repeat TEXT NOT NULL DEFAULT 'skip';   -- skip | send | alternative
                    ALTER TABLE jobs ADD COLUMN alt_mapping TEXT;
                    ALTER TABLE jobs ADD COLUMN alt_kind TEXT;
                    ALTER TABLE jobs ADD COLUMN alt_payload BLOB;
                    ALTER TABLE jobs ADD COLUMN alt_mapping_hash TEXT;
                    """)
        }
        migrator.registerMigration("v4-after") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN after_mapping TEXT;   -- waits for this mapping's job of the same entity
                    ALTER TABLE jobs ADD COLUMN after_capture BLOB;   -- that job's captured response, once done
                    """)
        }
        migrator.registerMigration("v5-csv") { db in
            try db.execute(
                sql: """
                    -- Staged rows of CSV mappings, one per (mapping, period, row key): the last received wins.
                    CREATE TABLE csv_rows (
                        mapping TEXT NOT NULL,
                        period_start INTEGER NOT NULL,
                        period_end INTEGER NOT NULL,
                        row_key TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        job_id INTEGER NOT NULL,
                        row BLOB NOT NULL,
                        row_hash BLOB NOT NULL,
                        company_id TEXT,
                        subject_id TEXT,
                        PRIMARY KEY (mapping, period_start, row_key)
                    );
                    -- One export per (mapping, period), claimed before writing so a hand export cannot double it.
                    CREATE TABLE csv_exports (
                        mapping TEXT NOT NULL,
                        period_start INTEGER NOT NULL,
                        period_end INTEGER NOT NULL,
                        state TEXT NOT NULL,                 -- claimed | done
                        claimed_by TEXT,
                        claimed_at INTEGER,
                        file TEXT,
                        rows INTEGER,
                        exported_at INTEGER,
                        PRIMARY KEY (mapping, period_start)
                    );
                    -- What each row key looked like when last exported (re-send policies).
                    CREATE TABLE csv_exported_keys (
                        mapping TEXT NOT NULL,
                        row_key TEXT NOT NULL,
                        row_hash BLOB NOT NULL,
                        period_start INTEGER NOT NULL,
                        company_id TEXT,
                        subject_id TEXT,
                        PRIMARY KEY (mapping, row_key)
                    );
                    -- Since when a mapping's periods are exported (set when first seen).
                    CREATE TABLE csv_schedules (mapping TEXT PRIMARY KEY, since INTEGER NOT NULL);
                    """)
        }
        migrator.registerMigration("v6-dependents-and-age-indexes") { db in
            try db.execute(
                sql: """
                    -- Releasing `after` jobs on every completion must not scan all held jobs.
                    CREATE INDEX jobs_after ON jobs(after_mapping, company_id, subject_id) WHERE after_mapping IS NOT NULL;
                    -- The oldest unfinished job, for /metrics, without reading the whole queue.
                    CREATE INDEX jobs_open_age ON jobs(created_at) WHERE state IN ('pending', 'running');
                    """)
        }
        migrator.registerMigration("v7-drop-redundant-subject-index") { db in
            // Erasure finds a candidate's events through inbox_subject and their jobs
            // through UNIQUE(event_id, …); this index only cost a random-order write per job.
            try db.execute(sql: "DROP INDEX jobs_subject")
        }
        migrator.registerMigration("v8-archive") { db in
            try db.execute(
                sql: """
                    -- Jobs that race a deadline (signed URL expiry) run earliest deadline first, in their own lane.
                    ALTER TABLE jobs ADD COLUMN deadline INTEGER;   -- unix ms
                    CREATE INDEX jobs_deadline_due ON jobs(deadline, id) WHERE state = 'pending' AND deadline IS NOT NULL;

                    -- The CV archive's compliance records (the same fields sit in a JSON sidecar beside each file).
                    CREATE TABLE archive_files (
                        id INTEGER PRIMARY KEY,
                        company_id TEXT NOT NULL,
                        subject_id TEXT NOT NULL,              -- the candidate
                        job_id INTEGER NOT NULL,
                        mapping TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        original_name TEXT,
                        content_type TEXT,
                        sniffed_type TEXT,
                        type_mismatch TEXT,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        path TEXT NOT NULL,                    -- relative to the archive directory
                        downloaded_at INTEGER NOT NULL,
                        url_expiry INTEGER,
                        source_url TEXT NOT NULL,              -- without the query (signature)
                        retain_until INTEGER NOT NULL,
                        UNIQUE (company_id, subject_id, sha256) -- identical content of a candidate is stored once
                    );
                    CREATE INDEX archive_files_retention ON archive_files(retain_until);
                    """)
        }
        migrator.registerMigration("v9-small-hot-indexes") { db in
            // Indexes over every job ever made cost a new random page per job once the
            // table is large; indexes over the open queue stay small and hot, so a
            // group commit's many entries land on a few pages. Claims, wake-ups and
            // the per-entity ordering check only ask about open jobs.
            try db.execute(
                sql: """
                    DROP INDEX jobs_effect;
                    CREATE INDEX jobs_effect_open ON jobs(mapping, effect_key, id) WHERE state IN ('pending', 'running', 'held', 'in_doubt');
                    DROP INDEX jobs_due;
                    DROP INDEX jobs_deadline_due;
                    CREATE INDEX jobs_pending_due ON jobs(run_at, id) WHERE state = 'pending' AND deadline IS NULL;
                    CREATE INDEX jobs_pending_deadline ON jobs(deadline, id) WHERE state = 'pending' AND deadline IS NOT NULL;
                    CREATE INDEX jobs_pending_deadline_wake ON jobs(run_at) WHERE state = 'pending' AND deadline IS NOT NULL;
                    CREATE INDEX jobs_running ON jobs(lease_expires_at) WHERE state = 'running';
                    -- The per-second gauges count these states only.
                    CREATE INDEX jobs_state ON jobs(state) WHERE state IN ('pending', 'running', 'held', 'in_doubt', 'dead', 'expired');
                    """)
        }
        migrator.registerMigration("v10-route-queue") { db in
            // Events acknowledged before their jobs exist; small (only what awaits
            // routing), removed in the commit that creates the event's jobs.
            try db.execute(sql: "CREATE TABLE route_queue (event_id INTEGER PRIMARY KEY REFERENCES inbox(id))")
        }
        migrator.registerMigration("v11-held-index") { db in
            // Start-up and reloads release held jobs per mapping; without this small
            // index (held jobs only) each of those was a scan of every job.
            try db.execute(sql: "CREATE INDEX jobs_held ON jobs(mapping, id) WHERE state = 'held'")
        }
        migrator.registerMigration("v12-job-domain") { db in
            // Typed hold reasons in columns of their own (no behaviour depends on
            // the wording of `last_error` any more), the first attempt's time
            // (`give_up_after` counts from it), the mapping a repeat runs
            // instead of its own (the row keeps its mapping), and `set_aside`
            // counted by the gauges' index.
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN hold_reason TEXT;     -- HoldReason.Code
                    ALTER TABLE jobs ADD COLUMN hold_detail TEXT;     -- its detail (variable names, mapping, kind, text)
                    ALTER TABLE jobs ADD COLUMN first_attempt_at INTEGER;
                    ALTER TABLE jobs ADD COLUMN runs_mapping TEXT;

                    UPDATE jobs SET hold_reason = 'after', hold_detail = after_mapping
                        WHERE state = 'held' AND last_error LIKE 'after:%';
                    UPDATE jobs SET hold_reason = 'missing_variables',
                        hold_detail = REPLACE(REPLACE(REPLACE(last_error, 'missing variables ', ''), 'missing variable ', ''), ', ', ',')
                        WHERE state = 'held' AND hold_reason IS NULL AND last_error LIKE 'missing variable%';
                    UPDATE jobs SET hold_reason = 'no_executor', hold_detail = kind
                        WHERE state = 'held' AND hold_reason IS NULL AND last_error LIKE 'no executor for kind %';
                    UPDATE jobs SET hold_reason = 'mapping_not_loaded', hold_detail = mapping
                        WHERE state = 'held' AND hold_reason IS NULL AND last_error LIKE 'mapping % is no longer a loaded %';
                    UPDATE jobs SET hold_reason = 'configuration', hold_detail = last_error
                        WHERE state = 'held' AND hold_reason IS NULL;
                    UPDATE jobs SET hold_reason = 'in_doubt' WHERE state = 'in_doubt';
                    -- Jobs that already ran: their first attempt is not known; their creation is the
                    -- closest bound kept (their retry window may end a little early, never late).
                    UPDATE jobs SET first_attempt_at = created_at WHERE attempts > 0;

                    DROP INDEX jobs_state;
                    CREATE INDEX jobs_state ON jobs(state) WHERE state IN ('pending', 'running', 'held', 'in_doubt', 'dead', 'expired', 'set_aside');
                    """)
        }
        migrator.registerMigration("v13-csv-uploads") { db in
            try db.execute(
                sql: """
                    -- A CSV period's file on its way to a remote folder (FileUpload in Domain): one per (mapping, period).
                    CREATE TABLE csv_uploads (
                        mapping TEXT NOT NULL,
                        period_start INTEGER NOT NULL,
                        local_path TEXT,                 -- NULL once the local copy is removed
                        remote_url TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        state TEXT NOT NULL,             -- FileUploadState
                        attempts INTEGER NOT NULL,
                        next_attempt_at INTEGER NOT NULL,
                        last_error TEXT,
                        uploaded_at INTEGER,
                        PRIMARY KEY (mapping, period_start)
                    );
                    """)
        }
        migrator.registerMigration("v14-flows") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN flow_state BLOB;   -- FlowProgress (Domain) of a flow's job, at its last checkpoint
                    -- The mapping files flows were planned with, by content hash: a flow finishes with its version.
                    CREATE TABLE mapping_versions (
                        content_hash TEXT PRIMARY KEY,
                        mapping TEXT NOT NULL,
                        source BLOB NOT NULL,
                        recorded_at INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v15-oauth-credentials") { db in
            try db.execute(
                sql: """
                    -- RefreshCredential (Domain): the current refresh token of each OAuth2 credential, per company ('' = shared).
                    CREATE TABLE oauth_credentials (
                        name TEXT NOT NULL,
                        company_id TEXT NOT NULL,
                        refresh_token TEXT NOT NULL,
                        expires_at INTEGER,
                        rotated_at INTEGER NOT NULL,
                        refresh_started_at INTEGER,      -- a refresh with this token was sent; its answer is not stored yet
                        problem TEXT,                    -- CredentialProblem
                        PRIMARY KEY (name, company_id)
                    );
                    """)
        }
        return migrator
    }
}
