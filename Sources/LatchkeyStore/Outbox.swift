/// One row of the email history, as support staff read it.
public struct MailRecord: Sendable, Equatable {
    /// The history id.
    public let id: Int64
    /// The person it was sent for, if still on file.
    public let personID: Int64?
    /// Which email it is, e.g. `reset` or `welcome`.
    public let kind: String
    /// The address it went to.
    public let recipient: String
    /// The subject line.
    public let subject: String
    /// `queued`, `sending`, `sent` or `failed`.
    public let status: String
    /// How many delivery attempts have been made.
    public let attempts: Int64
    /// The last transport error; empty when none.
    public let lastError: String
    /// When it was queued, in Unix seconds.
    public let createdAt: Int64
    /// When it was sent, in Unix seconds; nil until then.
    public let sentAt: Int64?
    /// When the next delivery attempt is due, in Unix seconds.
    public let nextAttemptAt: Int64
    /// Who queued it: an operator name, or `web`.
    public let createdBy: String

    init(row: Row) {
        id = row.int("id") ?? 0
        personID = row.int("person_id")
        kind = row.text("kind") ?? ""
        recipient = row.text("recipient") ?? ""
        subject = row.text("subject") ?? ""
        status = row.text("status") ?? ""
        attempts = row.int("attempts") ?? 0
        lastError = row.text("last_error") ?? ""
        createdAt = row.int("created_at") ?? 0
        sentAt = row.int("sent_at")
        nextAttemptAt = row.int("next_attempt_at") ?? 0
        createdBy = row.text("created_by") ?? ""
    }
}

/// The email history is also the outbox: a message is recorded `queued` in the same
/// transaction as the change it reports, then delivered; a failure stays as `failed` with its
/// error until `latchkey mail deliver` (or `mail retry`) sends it. Nothing is ever dropped.
extension Database {
    /// Records a queued message; returns its id. Call inside `write`.
    public func enqueueMail(personID: Int64?, kind: String, recipient: String, subject: String, locale: String,
                            messageID: String, sealedMessage: [UInt8], createdBy: String, now: Int64) throws -> Int64 {
        try execute("""
            INSERT INTO mail (person_id, kind, recipient, subject, locale, message_id, sealed_message, status, created_at,
                              updated_at, next_attempt_at, created_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)
            """, [personID.map { .int($0) } ?? .null, .text(kind), .text(recipient), .text(subject), .text(locale),
                  .text(messageID), .blob(sealedMessage), .int(now), .int(now), .int(now), .text(createdBy)])
        return lastInsertID
    }

    /// Takes message `id` for sending, unless another process has it or it was sent: returns
    /// the sealed message. A `sending` claim older than `staleAfter` seconds is taken over
    /// (its process died). `force` ignores the retry schedule.
    public func claimMail(id: Int64, now: Int64, staleAfter: Int64, force: Bool = false) throws -> [UInt8]? {
        try write {
            try execute("""
                UPDATE mail SET status = 'sending', attempts = attempts + 1, updated_at = ?
                WHERE id = ? AND (status IN ('queued', 'failed') OR (status = 'sending' AND updated_at <= ?))
                  AND (? OR next_attempt_at <= ?)
                """, [.int(now), .int(id), .int(now - staleAfter), .int(force ? 1 : 0), .int(now)])
            guard changes == 1 else { return nil }
            return try query("SELECT sealed_message FROM mail WHERE id = ?", [.int(id)]).first?.blob("sealed_message")
        }
    }

    /// Records a delivered message.
    public func markMailSent(id: Int64, now: Int64) throws {
        try write {
            try execute("UPDATE mail SET status = 'sent', sent_at = ?, updated_at = ?, last_error = '' WHERE id = ?",
                        [.int(now), .int(now), .int(id)])
        }
    }

    /// Records a failed attempt and when to try again: `retryAfter`, then twice that, and so
    /// on, at most 6 hours apart. The first failure of a message is a `mail.failed` event.
    public func markMailFailed(id: Int64, error: String, now: Int64, retryAfter: Int64 = 60) throws {
        try write {
            let attempts = try query("SELECT attempts FROM mail WHERE id = ?", [.int(id)]).first?.int("attempts") ?? 1
            let delay = min(retryAfter << min(attempts - 1, 20), 6 * 3600)
            try execute("UPDATE mail SET status = 'failed', last_error = ?, updated_at = ?, next_attempt_at = ? WHERE id = ?",
                        [.text(String(error.prefix(500))), .int(now), .int(now + delay), .int(id)])
            // The first failure is the event; later attempts of the same message are not news.
            if attempts == 1, let record = try mailRecord(id: id) {
                try recordEvent("mail.failed", data: ["mail": .object(["id": .int(id), "kind": .string(record.kind), "recipient": .string(record.recipient),
                                                                      "person_id": record.personID.map { .int($0) } ?? .null,
                                                                      "error": .string(String(error.prefix(500)))])], now: now)
            }
        }
    }

    /// Ids of messages due for (another) attempt, oldest first.
    public func dueMail(now: Int64, staleAfter: Int64) throws -> [Int64] {
        try query("""
            SELECT id FROM mail WHERE (status IN ('queued', 'failed') AND next_attempt_at <= ?)
               OR (status = 'sending' AND updated_at <= ?) ORDER BY id
            """, [.int(now), .int(now - staleAfter)]).compactMap { $0.int("id") }
    }

    /// Ids of every failed message, due or not, oldest first: what `mail retry --failed` sends now.
    public func failedMail() throws -> [Int64] {
        try query("SELECT id FROM mail WHERE status = 'failed' ORDER BY id").compactMap { $0.int("id") }
    }

    /// The email history, newest first; one person's when `personID` is given.
    public func mailHistory(personID: Int64? = nil, failedOnly: Bool = false, limit: Int = 200) throws -> [MailRecord] {
        var sql = "SELECT * FROM mail WHERE 1"
        var parameters: [SQLValue] = []
        if let personID { sql += " AND person_id = ?"; parameters.append(.int(personID)) }
        if failedOnly { sql += " AND status = 'failed'" }
        sql += " ORDER BY id DESC LIMIT \(limit)"
        return try query(sql, parameters).map(MailRecord.init)
    }

    /// One message of the history.
    public func mailRecord(id: Int64) throws -> MailRecord? {
        try query("SELECT * FROM mail WHERE id = ?", [.int(id)]).first.map(MailRecord.init)
    }
}
