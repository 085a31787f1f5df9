import LatchkeyCore

extension Database {
    /// Counts one attempt for `key` in `scope` and says whether it is within `limit`.
    /// Fixed windows: the count restarts once the window that began with the first attempt
    /// has passed. Keys are stored as keyed hashes, so the table holds no address or IP.
    /// Call inside `write`.
    public func throttleHit(scope: String, key: String, limit: SiteConfig.Limit, hashKey: [UInt8], now: Int64) throws -> Bool {
        let hash = Sodium.keyedHash(Array((scope + "\u{0}" + key).utf8), key: hashKey)
        try execute("""
            INSERT INTO throttle (scope, key_hash, window_start, count) VALUES (?, ?, ?, 1)
            ON CONFLICT (scope, key_hash) DO UPDATE SET
              count = CASE WHEN window_start <= ? THEN 1 ELSE count + 1 END,
              window_start = CASE WHEN window_start <= ? THEN excluded.window_start ELSE window_start END
            """, [.text(scope), .blob(hash), .int(now), .int(now - limit.window.seconds), .int(now - limit.window.seconds)])
        let count = try query("SELECT count FROM throttle WHERE scope = ? AND key_hash = ?", [.text(scope), .blob(hash)]).first?.int("count") ?? 0
        return count <= Int64(limit.count)
    }

    /// True when `key` has already used up `limit` in `scope` (without counting an attempt).
    public func throttleExceeded(scope: String, key: String, limit: SiteConfig.Limit, hashKey: [UInt8], now: Int64) throws -> Bool {
        let hash = Sodium.keyedHash(Array((scope + "\u{0}" + key).utf8), key: hashKey)
        let row = try query("SELECT count, window_start FROM throttle WHERE scope = ? AND key_hash = ?", [.text(scope), .blob(hash)]).first
        guard let row, let start = row.int("window_start"), start > now - limit.window.seconds else { return false }
        return (row.int("count") ?? 0) >= Int64(limit.count)
    }

    /// When the current window of `key` in `scope` ends, for a `Retry-After`.
    public func throttleWindowEnd(scope: String, key: String, limit: SiteConfig.Limit, hashKey: [UInt8]) throws -> Int64 {
        let hash = Sodium.keyedHash(Array((scope + "\u{0}" + key).utf8), key: hashKey)
        let start = try query("SELECT window_start FROM throttle WHERE scope = ? AND key_hash = ?", [.text(scope), .blob(hash)]).first?.int("window_start") ?? 0
        return start + limit.window.seconds
    }

    /// Forgets the counter of `key` in `scope` (after a successful login).
    public func throttleClear(scope: String, key: String, hashKey: [UInt8]) throws {
        let hash = Sodium.keyedHash(Array((scope + "\u{0}" + key).utf8), key: hashKey)
        try execute("DELETE FROM throttle WHERE scope = ? AND key_hash = ?", [.text(scope), .blob(hash)])
    }
}
