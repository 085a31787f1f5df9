import LatchkeyCore

/// The answers kept for API POSTs that carried an `Idempotency-Key`.
extension Database {
    /// How long an answer is kept and replayed.
    public static let idempotencyWindow: Int64 = 86400

    /// The answer kept for `idempotencyKey` of key `keyID`: its request hash, status and sealed
    /// body; nil when none was kept in the last 24 h.
    public func idempotentAnswer(keyID: Int64, idempotencyKey: String, now: Int64) throws -> (requestHash: [UInt8], status: Int, sealedBody: [UInt8])? {
        guard let row = try query("""
            SELECT request_hash, status, sealed_body FROM api_idempotency WHERE key_id = ? AND idempotency_key = ? AND created_at > ?
            """, [.int(keyID), .text(idempotencyKey), .int(now - Database.idempotencyWindow)]).first else { return nil }
        return (row.blob("request_hash") ?? [], Int(row.int("status") ?? 500), row.blob("sealed_body") ?? [])
    }

    /// Keeps an answer, replacing an expired one, and drops answers older than the window. Call inside `write`.
    public func keepIdempotentAnswer(keyID: Int64, idempotencyKey: String, requestHash: [UInt8], status: Int, sealedBody: [UInt8], now: Int64) throws {
        try execute("DELETE FROM api_idempotency WHERE created_at <= ?", [.int(now - Database.idempotencyWindow)])
        try execute("""
            INSERT OR REPLACE INTO api_idempotency (key_id, idempotency_key, request_hash, status, sealed_body, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [.int(keyID), .text(idempotencyKey), .blob(requestHash), .int(Int64(status)), .blob(sealedBody), .int(now)])
    }
}
