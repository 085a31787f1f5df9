import LatchkeyCore

/// Staff console sessions: their own table, cookie and key, shorter timeouts than a customer's
/// (`admin.idle_timeout`, `admin.absolute_timeout`), a CSRF token each, and the time of the
/// last second-factor code (step-up).
public struct StaffSessions {
    /// A live staff session.
    public struct Live: Sendable {
        /// The session's row id.
        public let sessionID: Int64
        /// Who is logged in.
        public let staff: StaffMember
        /// The token every POST must carry.
        public let csrf: String
        /// When a second-factor code was last given (login or step-up).
        public let stepUpAt: Int64
    }

    let db: Database
    let hashKey: [UInt8]
    let config: SiteConfig

    /// Staff sessions in `db`, keyed by `key`, with `config`'s console timeouts.
    public init(db: Database, key: SiteKey, config: SiteConfig) {
        self.db = db
        hashKey = key.subkey(.staffSessionHash)
        self.config = config
    }

    /// Starts a session; returns the cookie value. Call inside `write`.
    public func start(staffID: Int64, remoteAddr: String, now: Int64) throws -> String {
        let bytes = Sodium.randomBytes(Sessions.idBytes)
        try db.execute("""
            INSERT INTO staff_session (staff_id, id_hash, csrf, created_at, last_seen_at, expires_at, step_up_at, remote_addr)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.int(staffID), .blob(Sodium.keyedHash(bytes, key: hashKey)), .text(Sodium.base64URL(Sodium.randomBytes(32))),
                  .int(now), .int(now), .int(now + config.admin.absoluteTimeout.seconds), .int(now), .text(remoteAddr)])
        return Sodium.base64URL(bytes)
    }

    /// The live session for `cookie`, or nil: malformed, unknown, idle or past its end, or its
    /// staff member disabled. Every request refreshes `last_seen_at`: console requests are few,
    /// and a 30-minute idle timeout needs it exact.
    public func find(_ cookie: String, now: Int64) throws -> Live? {
        guard cookie.utf8.count == 43, let bytes = Sodium.fromBase64URL(cookie, expectedCount: Sessions.idBytes) else { return nil }
        let hash = Sodium.keyedHash(bytes, key: hashKey)
        guard let row = try db.query("""
            SELECT s.id AS session_id, s.id_hash, s.csrf, s.last_seen_at, s.expires_at, s.step_up_at, t.*
            FROM staff_session s JOIN staff t ON t.id = s.staff_id WHERE s.id_hash = ?
            """, [.blob(hash)]).first,
              let stored = row.blob("id_hash"), Sodium.constantTimeEqual(stored, hash),
              let sessionID = row.int("session_id"), let lastSeen = row.int("last_seen_at"), let expires = row.int("expires_at"),
              now < expires, now - lastSeen < config.admin.idleTimeout.seconds, row.int("disabled_at") == nil else { return nil }
        try db.write { try db.execute("UPDATE staff_session SET last_seen_at = ? WHERE id = ?", [.int(now), .int(sessionID)]) }
        return Live(sessionID: sessionID, staff: StaffMember(row: row), csrf: row.text("csrf") ?? "", stepUpAt: row.int("step_up_at") ?? 0)
    }

    /// Records a second-factor code given now. Call inside `write`.
    public func steppedUp(_ session: Live, now: Int64) throws {
        try db.execute("UPDATE staff_session SET step_up_at = ? WHERE id = ?", [.int(now), .int(session.sessionID)])
    }

    /// Ends the session with row id `id`. Call inside `write`.
    public func end(id: Int64) throws {
        try db.execute("DELETE FROM staff_session WHERE id = ?", [.int(id)])
    }
}
