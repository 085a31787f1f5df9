import LatchkeyCore

/// Login sessions. The cookie holds 32 random bytes; the database holds only their keyed hash,
/// so a copy of the database cannot be replayed as a cookie.
public struct Sessions {
    /// Bytes of randomness in a session id: 256 bits.
    public static let idBytes = 32
    /// `last_seen_at` is written at most this often (or every half idle timeout, if shorter),
    /// so checking a session is nearly always a read, not a write.
    public static let touchInterval: Int64 = 300

    /// A live session and the person it belongs to.
    public struct Live: Sendable {
        /// The session's database row id.
        public let sessionID: Int64
        /// The person logged in.
        public let person: Person
        /// True when the person holds an unrevoked grant.
        public let hasAccess: Bool
    }

    let db: Database
    let hashKey: [UInt8]
    let config: SiteConfig

    /// Sessions in `db`, keyed by `key`, with `config`'s timeouts.
    public init(db: Database, key: SiteKey, config: SiteConfig) {
        self.db = db
        hashKey = key.subkey(.sessionHash)
        self.config = config
    }

    /// Starts a session; returns the cookie value. Call inside `write`.
    public func start(personID: Int64, remoteAddr: String, userAgent: String, now: Int64) throws -> String {
        let bytes = Sodium.randomBytes(Sessions.idBytes)
        try db.execute("""
            INSERT INTO session (person_id, id_hash, created_at, last_seen_at, expires_at, remote_addr, user_agent)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.int(personID), .blob(Sodium.keyedHash(bytes, key: hashKey)), .int(now), .int(now),
                  .int(now + config.session.absoluteTimeout.seconds), .text(remoteAddr), .text(userAgent)])
        return Sodium.base64URL(bytes)
    }

    /// The live session for a cookie value, or nil: malformed, unknown, idle too long or past
    /// its absolute end. Refreshes `last_seen_at` at most every `touchInterval` seconds.
    public func find(_ cookie: String, now: Int64) throws -> Live? {
        guard cookie.utf8.count == 43, let bytes = Sodium.fromBase64URL(cookie, expectedCount: Sessions.idBytes) else { return nil }
        let hash = Sodium.keyedHash(bytes, key: hashKey)
        guard let row = try db.query("""
            SELECT s.id AS session_id, s.id_hash, s.last_seen_at, s.expires_at, p.*,
                   EXISTS (SELECT 1 FROM access_grant g WHERE g.person_id = p.id AND g.revoked_at IS NULL) AS has_access
            FROM session s JOIN person p ON p.id = s.person_id WHERE s.id_hash = ?
            """, [.blob(hash)]).first,
              let stored = row.blob("id_hash"), Sodium.constantTimeEqual(stored, hash),
              let sessionID = row.int("session_id"), let lastSeen = row.int("last_seen_at"), let expires = row.int("expires_at"),
              now < expires, now - lastSeen < config.session.idleTimeout.seconds else { return nil }
        if now - lastSeen >= min(Sessions.touchInterval, config.session.idleTimeout.seconds / 2) {
            try db.execute("UPDATE session SET last_seen_at = ? WHERE id = ?", [.int(now), .int(sessionID)])
        }
        return Live(sessionID: sessionID, person: Person(row: row), hasAccess: row.int("has_access") == 1)
    }

    /// Ends the session with this cookie value, if any.
    public func end(_ cookie: String) throws {
        guard let bytes = Sodium.fromBase64URL(cookie, expectedCount: Sessions.idBytes) else { return }
        try db.execute("DELETE FROM session WHERE id_hash = ?", [.blob(Sodium.keyedHash(bytes, key: hashKey))])
    }
}

extension Database {
    /// A stored setting, or nil.
    public func setting(_ name: String) throws -> String? {
        try query("SELECT value FROM setting WHERE name = ?", [.text(name)]).first?.text("value")
    }

    /// Stores a setting.
    public func setSetting(_ name: String, _ value: String) throws {
        try execute("INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [.text(name), .text(value)])
    }
}
