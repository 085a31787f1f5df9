import CSQLite

/// The schema, as named, append-only steps. Never edit a step that has shipped: add one.
public enum Migrations {
    /// Every step in order; `(name, sql)`.
    public static let all: [(name: String, sql: String)] = [
        ("0001-people-access-tokens-sessions-mail-audit", """
        CREATE TABLE person (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,               -- stored lowercased
            name TEXT NOT NULL DEFAULT '',
            locale TEXT NOT NULL DEFAULT '',          -- '' means the site's default
            kind TEXT NOT NULL CHECK (kind IN ('contact', 'customer')),
            disabled_at INTEGER,
            password_hash TEXT,
            must_change_password INTEGER NOT NULL DEFAULT 0,
            password_changed_at INTEGER,
            last_login_at INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX person_name ON person (name);

        CREATE TABLE offer (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE access_grant (
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE,
            offer_id INTEGER NOT NULL REFERENCES offer (id) ON DELETE CASCADE,
            granted_at INTEGER NOT NULL,
            granted_by TEXT NOT NULL,
            revoked_at INTEGER,
            PRIMARY KEY (person_id, offer_id)
        ) STRICT;

        -- A link's token is never stored: token_hash is a keyed hash (lookup) and sealed_token
        -- is encrypted with the site key (so support can copy a live link); neither is usable
        -- from a copy of the database alone.
        CREATE TABLE reset_token (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE,
            purpose TEXT NOT NULL CHECK (purpose IN ('reset', 'welcome')),
            token_hash BLOB NOT NULL UNIQUE,
            sealed_token BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            reuse_until INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER,
            voided_at INTEGER
        ) STRICT;
        CREATE INDEX reset_token_person ON reset_token (person_id, created_at);

        CREATE TABLE session (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE,
            id_hash BLOB NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            remote_addr TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        ) STRICT;
        CREATE INDEX session_person ON session (person_id);

        -- The email history. The message itself is sealed with the site key because it
        -- holds a live link; everything support needs to read is in clear columns.
        CREATE TABLE mail (
            id INTEGER PRIMARY KEY,
            person_id INTEGER REFERENCES person (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL,
            locale TEXT NOT NULL,
            message_id TEXT NOT NULL,
            sealed_message BLOB,
            status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            sent_at INTEGER,
            created_by TEXT NOT NULL
        ) STRICT;
        CREATE INDEX mail_person ON mail (person_id, created_at);
        CREATE INDEX mail_due ON mail (status, next_attempt_at);

        -- Fixed-window counters; key_hash is a keyed hash of the address or IP.
        CREATE TABLE throttle (
            scope TEXT NOT NULL,
            key_hash BLOB NOT NULL,
            window_start INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (scope, key_hash)
        ) STRICT, WITHOUT ROWID;

        -- Who did what, when, from where. person_id is not a foreign key, so the trail
        -- outlives a deleted person (whose subject is then erased).
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            person_id INTEGER,
            subject TEXT NOT NULL DEFAULT '',
            remote_addr TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        ) STRICT;
        CREATE INDEX audit_person ON audit (person_id, at);
        """),
        ("0002-settings", """
        -- Values the site computes once and keeps, such as the dummy password hash that makes a
        -- login for an unknown address cost the same as one for a real account.
        CREATE TABLE setting (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT;
        """),
        ("0003-staff", """
        -- The staff console's own accounts: not customers, with their own login and cookie.
        -- The TOTP secret is sealed with the site key; recovery codes and session ids are keyed
        -- hashes: none is usable from a copy of the database alone.
        CREATE TABLE staff (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL CHECK (role IN ('viewer', 'support', 'manager', 'owner')),
            locale TEXT NOT NULL DEFAULT '',
            password_hash TEXT,
            sealed_totp_secret BLOB,
            totp_last_step INTEGER NOT NULL DEFAULT 0,
            enrolled_at INTEGER,
            disabled_at INTEGER,
            last_login_at INTEGER,
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL
        ) STRICT;

        CREATE TABLE staff_recovery_code (
            id INTEGER PRIMARY KEY,
            staff_id INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
            code_hash BLOB NOT NULL,
            used_at INTEGER
        ) STRICT;
        CREATE INDEX staff_recovery_code_staff ON staff_recovery_code (staff_id);

        -- An enrolment link. What the page shows (the secret and codes to be) is sealed, so
        -- every visit shows the same until the POST that completes it; GET never uses it up.
        CREATE TABLE staff_enrolment (
            id INTEGER PRIMARY KEY,
            staff_id INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
            token_hash BLOB NOT NULL UNIQUE,
            sealed_secret BLOB NOT NULL,
            sealed_codes BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER
        ) STRICT;

        CREATE TABLE staff_session (
            id INTEGER PRIMARY KEY,
            staff_id INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
            id_hash BLOB NOT NULL UNIQUE,
            csrf TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            step_up_at INTEGER NOT NULL,
            remote_addr TEXT NOT NULL DEFAULT ''
        ) STRICT;
        CREATE INDEX staff_session_staff ON staff_session (staff_id);
        """),
        ("0004-person-search", """
        -- Substring search over email and name with an index: trigrams (3+ characters).
        CREATE VIRTUAL TABLE person_search USING fts5 (email, name, content = 'person', content_rowid = 'id',
                                                       tokenize = 'trigram');
        INSERT INTO person_search (rowid, email, name) SELECT id, email, name FROM person;
        CREATE TRIGGER person_search_insert AFTER INSERT ON person BEGIN
            INSERT INTO person_search (rowid, email, name) VALUES (new.id, new.email, new.name);
        END;
        CREATE TRIGGER person_search_delete AFTER DELETE ON person BEGIN
            INSERT INTO person_search (person_search, rowid, email, name) VALUES ('delete', old.id, old.email, old.name);
        END;
        CREATE TRIGGER person_search_update AFTER UPDATE OF email, name ON person BEGIN
            INSERT INTO person_search (person_search, rowid, email, name) VALUES ('delete', old.id, old.email, old.name);
            INSERT INTO person_search (rowid, email, name) VALUES (new.id, new.email, new.name);
        END;
        """),
        ("0005-integration", """
        -- The id the site's other systems know a person by (a CRM's, a checkout's).
        ALTER TABLE person ADD COLUMN external_id TEXT;
        CREATE UNIQUE INDEX person_external_id ON person (external_id) WHERE external_id IS NOT NULL;

        -- Every CGI parses the whole schema when it opens the database, so these tables are
        -- kept few and lean: WITHOUT ROWID where the key is the table (no second index), and
        -- no uniqueness the code does not need from the database.

        -- API keys: only a keyed hash of the key is kept, so the table cannot be used as keys.
        -- Scopes are comma-separated; a revoked key's name is freed by renaming it.
        CREATE TABLE api_key (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash BLOB NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            last_used_at INTEGER,
            revoked_at INTEGER
        ) STRICT;

        -- A POST's answer kept for its Idempotency-Key, sealed (it may hold a link), for 24 h.
        CREATE TABLE api_idempotency (
            key_id INTEGER NOT NULL,
            idempotency_key TEXT NOT NULL,
            request_hash BLOB NOT NULL,
            status INTEGER NOT NULL,
            sealed_body BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (key_id, idempotency_key)
        ) STRICT, WITHOUT ROWID;

        -- Stripe: each event worked once; buyers remembered by Stripe customer id; what a
        -- payment (pi_…) or subscription (sub_…) granted, so a refund or cancellation revokes
        -- exactly that.
        CREATE TABLE stripe_event (
            event_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            received_at INTEGER NOT NULL,
            outcome TEXT NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE stripe_customer (
            customer_id TEXT PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE stripe_grant (
            source TEXT NOT NULL,
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE,
            offer TEXT NOT NULL,
            PRIMARY KEY (source, person_id, offer)
        ) STRICT, WITHOUT ROWID;

        -- Outbound events, one row per endpoint, written in the transaction of the change they
        -- report and sent afterwards; next_attempt_at is NULL once retries have given up. Not
        -- tied to person: the record of a deletion outlives it. An endpoint that answered 410
        -- is a `setting` row, `webhook.disabled URL`.
        CREATE TABLE webhook_delivery (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            event TEXT NOT NULL,
            url TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            next_attempt_at INTEGER,
            sent_at INTEGER
        ) STRICT;
        CREATE INDEX webhook_delivery_due ON webhook_delivery (status, next_attempt_at);
        """),
        ("0006-email-change", """
        -- A customer's change of address waits here until the link sent to the new address is
        -- followed. Only a keyed hash of the link's token is kept.
        CREATE TABLE email_change (
            token_hash BLOB PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES person (id) ON DELETE CASCADE,
            new_email TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER
        ) STRICT, WITHOUT ROWID;
        """),
    ]
}

extension Database {
    /// Applies every step not yet applied, each in its own `BEGIN IMMEDIATE` transaction
    /// that also records it, so a step is either wholly applied and recorded or not at all.
    /// Returns the names applied now.
    @discardableResult
    public func migrate() throws -> [String] {
        try execute("CREATE TABLE IF NOT EXISTS schema_migration (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT")
        var applied: [String] = []
        for (index, step) in Migrations.all.enumerated() {
            let done: Bool = try write {
                if try !query("SELECT 1 FROM schema_migration WHERE name = ?", [.text(step.name)]).isEmpty { return true }
                try executeScript(step.sql)
                try execute("INSERT INTO schema_migration (name, applied_at) VALUES (?, strftime('%s','now'))", [.text(step.name)])
                try execute("PRAGMA user_version = \(index + 1)")
                return false
            }
            if !done { applied.append(step.name) }
        }
        return applied
    }

    /// True when every migration has been applied; a cheap check for the CGIs.
    public func isCurrent() throws -> Bool {
        try query("PRAGMA user_version").first?.int("user_version") == Int64(Migrations.all.count)
    }

    /// Runs several statements separated by semicolons.
    public func executeScript(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "failed"
            sqlite3_free(error)
            throw StoreError(code: sqlite3_extended_errcode(handle), message: message, sql: String(sql.prefix(80)))
        }
    }
}
