import LatchkeyCore

/// Reset and welcome links (SPEC §5).
///
/// A token is 32 random bytes, shown to people as 43 characters of URL-safe base64. The
/// database keeps a keyed hash of it (to find it) and a copy sealed with the site key (so
/// support staff can copy a live link); a copy of the database without the key can neither
/// use nor rebuild a link. A token is single-use: consuming it sets `used_at` in the same
/// transaction as the password change, and any password change voids every other token.
public struct ResetTokens {
    /// Bytes of randomness in a token: 256 bits.
    public static let tokenBytes = 32

    /// What checking a token found.
    public enum Check: Equatable, Sendable {
        case valid(tokenID: Int64, personID: Int64)
        /// Known, but expired, used, or voided by a newer link or a password change.
        case expired
        /// Not a token we issued (or malformed).
        case invalid
    }

    /// A link ready to send.
    public struct Link: Sendable, Equatable {
        /// The token for the link, as 43 characters of URL-safe base64.
        public let token: String
        /// When the link stops working, in Unix seconds.
        public let expiresAt: Int64
        /// Until when asking again re-sends this link, in Unix seconds.
        public let reuseUntil: Int64
        /// When the link was issued, in Unix seconds.
        public let createdAt: Int64
        /// Who issued it: an operator name, or `web`.
        public let createdBy: String
        /// True when an earlier link, still inside the reuse window, was handed out again.
        public let reused: Bool
    }

    let db: Database
    let hashKey: [UInt8]
    let sealKey: [UInt8]

    /// Tokens in `db`, keyed by `key`.
    public init(db: Database, key: SiteKey) {
        self.db = db
        hashKey = key.subkey(.tokenHash)
        sealKey = key.subkey(.tokenSeal)
    }

    /// The link to send now: the newest live link when asked again within its reuse window,
    /// else a fresh one that voids all older ones. Call inside `write`.
    public func issue(personID: Int64, purpose: String, lifetime: TimeSpan, reuseWindow: TimeSpan,
                      by actor: String, now: Int64) throws -> Link {
        if let live = try current(personID: personID, now: now) { return live }
        try db.voidTokens(personID: personID, now: now)
        let bytes = Sodium.randomBytes(ResetTokens.tokenBytes)
        let expiresAt = now + lifetime.seconds
        let reuseUntil = min(now + reuseWindow.seconds, expiresAt)
        try db.execute("""
            INSERT INTO reset_token (person_id, purpose, token_hash, sealed_token, created_at, created_by, reuse_until, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.int(personID), .text(purpose), .blob(Sodium.keyedHash(bytes, key: hashKey)),
                  .blob(Sodium.seal(bytes, key: sealKey)), .int(now), .text(actor), .int(reuseUntil), .int(expiresAt)])
        return Link(token: Sodium.base64URL(bytes), expiresAt: expiresAt, reuseUntil: reuseUntil,
                    createdAt: now, createdBy: actor, reused: false)
    }

    /// The newest link still inside its reuse window, unsealed; nil when there is none.
    public func current(personID: Int64, now: Int64) throws -> Link? {
        let row = try db.query("""
            SELECT * FROM reset_token WHERE person_id = ? AND used_at IS NULL AND voided_at IS NULL
              AND reuse_until > ? AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1
            """, [.int(personID), .int(now), .int(now)]).first
        guard let row, let sealed = row.blob("sealed_token"), let bytes = Sodium.open(sealed, key: sealKey) else { return nil }
        return Link(token: Sodium.base64URL(bytes), expiresAt: row.int("expires_at") ?? 0, reuseUntil: row.int("reuse_until") ?? 0,
                    createdAt: row.int("created_at") ?? 0, createdBy: row.text("created_by") ?? "", reused: true)
    }

    /// Checks a token from a link. Never throws for bad input and never consumes: a ladder of
    /// guards from the cheapest to the costliest, each answering `invalid` or `expired`.
    public func check(_ token: String, now: Int64) throws -> Check {
        guard !token.isEmpty, token.utf8.count == 43,
              let bytes = Sodium.fromBase64URL(token, expectedCount: ResetTokens.tokenBytes) else { return .invalid }
        let hash = Sodium.keyedHash(bytes, key: hashKey)
        guard let row = try db.query("SELECT * FROM reset_token WHERE token_hash = ?", [.blob(hash)]).first,
              let stored = row.blob("token_hash"), Sodium.constantTimeEqual(stored, hash),
              let tokenID = row.int("id"), let personID = row.int("person_id") else { return .invalid }
        guard row.int("used_at") == nil, row.int("voided_at") == nil else { return .expired }
        guard let expiresAt = row.int("expires_at"), now < expiresAt else { return .expired }
        return .valid(tokenID: tokenID, personID: personID)
    }

    /// Marks a valid token used; false when another request used it first (or it just
    /// expired). Call inside `write`, before changing the password.
    public func consume(tokenID: Int64, now: Int64) throws -> Bool {
        try db.execute("""
            UPDATE reset_token SET used_at = ? WHERE id = ? AND used_at IS NULL AND voided_at IS NULL AND expires_at > ?
            """, [.int(now), .int(tokenID), .int(now)])
        return db.changes == 1
    }

    /// The absolute link for `token`, built from `base_url` only; `language` (when not the
    /// default) picks the language of the form the link opens.
    public static func url(token: String, config: SiteConfig, language: String? = nil) -> String {
        let lang = language.flatMap { $0 != config.defaultLocale && config.locales.contains($0) ? "&lang=" + $0 : nil } ?? ""
        return config.origin + config.cgiPrefix + "reset?token=" + token + lang
    }
}

extension Database {
    /// Voids every outstanding link of the person: reset and welcome links, and a pending
    /// change of address (whoever asked for it may be who the password change shuts out).
    /// Call inside `write`.
    public func voidTokens(personID: Int64, now: Int64) throws {
        try execute("UPDATE reset_token SET voided_at = ? WHERE person_id = ? AND used_at IS NULL AND voided_at IS NULL",
                    [.int(now), .int(personID)])
        try execute("UPDATE email_change SET used_at = ? WHERE person_id = ? AND used_at IS NULL", [.int(now), .int(personID)])
    }
}
