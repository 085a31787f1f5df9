import LatchkeyCore
import LatchkeyStore

/// The integration API's keys: printed once, stored as a keyed hash, each with scopes.
public enum APIKeys {
    /// What a key may do.
    public enum Scope: String, CaseIterable, Sendable {
        /// Read people and offers.
        case peopleRead = "people:read"
        /// Create and update people.
        case peopleWrite = "people:write"
        /// Grant and revoke access.
        case accessWrite = "access:write"
        /// Send reset and welcome emails.
        case mailSend = "mail:send"
        /// See the link inside a reset answer.
        case linksRead = "links:read"
    }

    /// A key as the API and `api-key list` know it (never the key itself).
    public struct Key: Sendable {
        /// Row id and the name it is audited under (`api:NAME`).
        public let id: Int64, name: String
        /// What it may do.
        public let scopes: Set<Scope>
        /// When it was made and by whom; when it was last used and revoked.
        public let createdAt: Int64, createdBy: String, lastUsedAt: Int64?, revokedAt: Int64?

        /// The audit trail's name for this key.
        public var actorName: String { "api:" + name }

        init(row: Row) {
            id = row.int("id") ?? 0
            name = row.text("name") ?? ""
            scopes = Set((row.text("scopes") ?? "").split(separator: ",").compactMap { Scope(rawValue: String($0)) })
            createdAt = row.int("created_at") ?? 0
            createdBy = row.text("created_by") ?? ""
            lastUsedAt = row.int("last_used_at")
            revokedAt = row.int("revoked_at")
        }
    }

    /// A key name: letters, digits, `-`, `_` and `.`, at most 64.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Makes key `name` with `scopes`; returns the key, which is never shown again.
    public static func add(name: String, scopes: Set<Scope>, by actor: String, services: Services, now: Int64) throws -> String {
        guard isValidName(name) else { throw AccessError("a key name is letters, digits, -, _ and . (at most 64)") }
        guard !scopes.isEmpty else { throw AccessError("a key needs at least one scope (\(Scope.allCases.map(\.rawValue).joined(separator: ", ")))") }
        let key = "lk_" + Sodium.base64URL(Sodium.randomBytes(32))
        let db = services.db
        try db.write {
            guard try db.query("SELECT 1 FROM api_key WHERE name = ?", [.text(name)]).isEmpty else {
                throw AccessError("a key named '\(name)' already exists (latchkey api-key revoke \(name) first)")
            }
            try db.execute("INSERT INTO api_key (name, key_hash, scopes, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                           [.text(name), .blob(hash(key, services.key)), .text(scopes.map(\.rawValue).sorted().joined(separator: ",")),
                            .int(now), .text(actor)])
            try db.audit(AuditEvent(actor: actor, action: "api-key.created", detail: "\(name): \(scopes.map(\.rawValue).sorted().joined(separator: ","))"), now: now)
        }
        return key
    }

    /// Every key, newest first.
    public static func list(db: Database) throws -> [Key] {
        try db.query("SELECT * FROM api_key ORDER BY id DESC").map(Key.init)
    }

    /// Revokes key `name`: it stops working at once. A name is freed for a new key.
    public static func revoke(name: String, by actor: String, db: Database, now: Int64) throws {
        try db.write {
            try db.execute("UPDATE api_key SET revoked_at = ?, name = name || '#revoked-' || id WHERE name = ? AND revoked_at IS NULL",
                           [.int(now), .text(name)])
            guard db.changes == 1 else { throw AccessError("no active key named '\(name)' (see latchkey api-key list)") }
            try db.audit(AuditEvent(actor: actor, action: "api-key.revoked", detail: name), now: now)
        }
    }

    /// The live key that `presented` is, or nil. Looked up by its keyed hash, so no comparison
    /// of secrets happens in our code at all.
    public static func authenticate(_ presented: String, services: Services) throws -> Key? {
        guard presented.hasPrefix("lk_"), presented.utf8.count == 46 else { return nil }
        return try services.db.query("SELECT * FROM api_key WHERE key_hash = ? AND revoked_at IS NULL",
                                     [.blob(hash(presented, services.key))]).first.map(Key.init)
    }

    /// Counts one request of `key` against `api.rate_limit` and stamps its last use: nil when
    /// within the limit, else the seconds until the window resets.
    public static func admit(_ key: Key, services: Services, now: Int64) throws -> Int64? {
        let db = services.db, limit = services.config.api.rateLimit
        return try db.write {
            try db.execute("UPDATE api_key SET last_used_at = ? WHERE id = ?", [.int(now), .int(key.id)])
            let hashKey = services.key.subkey(.throttleHash)
            guard try !db.throttleHit(scope: "api", key: String(key.id), limit: limit, hashKey: hashKey, now: now) else { return nil }
            return max(1, try db.throttleWindowEnd(scope: "api", key: String(key.id), limit: limit, hashKey: hashKey) - now)
        }
    }

    static func hash(_ key: String, _ siteKey: SiteKey) -> [UInt8] {
        Sodium.keyedHash(Array(key.utf8), key: siteKey.subkey(.apiKeyHash))
    }
}
