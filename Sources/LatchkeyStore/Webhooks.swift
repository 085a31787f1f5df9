import LatchkeyCore

/// One endpoint's copy of one outbound event, as `webhook log` shows it.
public struct WebhookDelivery: Sendable, Equatable {
    /// The row id (`webhook retry ID`).
    public let id: Int64
    /// The Standard Webhooks message id (`webhook-id`), the same for every endpoint.
    public let messageID: String
    /// The event type, e.g. `access.granted`.
    public let event: String
    /// Where it goes.
    public let url: String
    /// The JSON body, exactly as signed and sent.
    public let payload: String
    /// `queued`, `sending`, `sent` or `failed`.
    public let status: String
    /// Attempts made so far.
    public let attempts: Int64
    /// The HTTP status of the last attempt; nil when none came back.
    public let lastStatus: Int64?
    /// What went wrong last; empty when nothing did.
    public let lastError: String
    /// When it was recorded, and when it was acknowledged.
    public let createdAt: Int64, sentAt: Int64?
    /// When the next automatic attempt is due; nil once retries gave up (`webhook retry` still sends).
    public let nextAttemptAt: Int64?

    init(row: Row) {
        id = row.int("id") ?? 0
        messageID = row.text("message_id") ?? ""
        event = row.text("event") ?? ""
        url = row.text("url") ?? ""
        payload = row.text("payload") ?? ""
        status = row.text("status") ?? ""
        attempts = row.int("attempts") ?? 0
        lastStatus = row.int("last_status")
        lastError = row.text("last_error") ?? ""
        createdAt = row.int("created_at") ?? 0
        sentAt = row.int("sent_at")
        nextAttemptAt = row.int("next_attempt_at")
    }
}

/// Outbound events are an outbox like mail: recorded in the transaction of the change, sent
/// after the answer, retried on a schedule for 24 hours, and kept.
extension Database {
    /// Seconds between attempts: the first retry soon, then further apart, up to 24 h in all.
    public static let webhookBackoff: [Int64] = [5, 300, 1800, 7200, 18000, 36000]
    /// How long automatic retries go on.
    public static let webhookRetryPeriod: Int64 = 86400

    /// Records event `type` with `data` for every endpoint that wants it; nothing when none does.
    /// An endpoint disabled by a 410 gets it as failed, so it is on record and can be retried.
    /// Call inside `write`.
    public func recordEvent(_ type: String, data: [String: JSONOut], now: Int64) throws {
        let targets = webhooks.filter { $0.wants(type) }
        guard !targets.isEmpty else { return }
        let messageID = "msg_" + Sodium.base64URL(Sodium.randomBytes(18))
        let payload = JSONOut.object(["type": .string(type), "timestamp": .string(Clock.iso8601(now)), "data": .object(data)]).text
        let disabled = Set(try query("SELECT substr(name, 18) AS url FROM setting WHERE name LIKE 'webhook.disabled %'").compactMap { $0.text("url") })
        for target in targets {
            let off = disabled.contains(target.url)
            try execute("""
                INSERT INTO webhook_delivery (message_id, event, url, payload, status, last_error, created_at, updated_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(messageID), .text(type), .text(target.url), .text(payload), .text(off ? "failed" : "queued"),
                      .text(off ? "endpoint disabled (it answered 410 Gone); webhook retry sends it" : ""), .int(now), .int(now),
                      off ? .null : .int(now)])
        }
        eventsRecorded += 1
    }

    /// Takes delivery `id` for sending, unless another process has it, it was acknowledged, or
    /// (without `force`) it is not due. A `sending` claim older than `staleAfter` is taken over.
    public func claimWebhook(id: Int64, now: Int64, staleAfter: Int64, force: Bool = false) throws -> WebhookDelivery? {
        try write {
            try execute("""
                UPDATE webhook_delivery SET status = 'sending', attempts = attempts + 1, updated_at = ?
                WHERE id = ? AND (status IN ('queued', 'failed') OR (status = 'sending' AND updated_at <= ?))
                  AND (? OR next_attempt_at <= ?)
                """, [.int(now), .int(id), .int(now - staleAfter), .int(force ? 1 : 0), .int(now)])
            guard changes == 1 else { return nil }
            return try webhookDelivery(id: id)
        }
    }

    /// Records an acknowledged (2xx) delivery; it is never sent again.
    public func markWebhookSent(id: Int64, httpStatus: Int, now: Int64) throws {
        try write {
            try execute("""
                UPDATE webhook_delivery SET status = 'sent', last_status = ?, last_error = '', sent_at = ?, updated_at = ?, next_attempt_at = NULL
                WHERE id = ?
                """, [.int(Int64(httpStatus)), .int(now), .int(now), .int(id)])
        }
    }

    /// Records a failed attempt and schedules the next one by `webhookBackoff`, the last no
    /// later than 24 h after the event; after that it waits for `webhook retry`.
    public func markWebhookFailed(id: Int64, httpStatus: Int?, error: String, now: Int64, retry: Bool = true) throws {
        try write {
            guard let row = try query("SELECT attempts, created_at FROM webhook_delivery WHERE id = ?", [.int(id)]).first else { return }
            let attempts = row.int("attempts") ?? 1, deadline = (row.int("created_at") ?? now) + Database.webhookRetryPeriod
            let step = Database.webhookBackoff[Int(min(max(attempts - 1, 0), Int64(Database.webhookBackoff.count - 1)))]
            let next: SQLValue = !retry || now >= deadline ? .null : .int(min(now + step, deadline))
            try execute("""
                UPDATE webhook_delivery SET status = 'failed', last_status = ?, last_error = ?, updated_at = ?, next_attempt_at = ? WHERE id = ?
                """, [httpStatus.map { .int(Int64($0)) } ?? .null, .text(String(error.prefix(500))), .int(now), next, .int(id)])
        }
    }

    /// Ids of deliveries due for an attempt (or stuck in a dead process's claim), oldest first.
    public func dueWebhooks(now: Int64, staleAfter: Int64) throws -> [Int64] {
        try query("""
            SELECT id FROM webhook_delivery WHERE (status IN ('queued', 'failed') AND next_attempt_at <= ?)
               OR (status = 'sending' AND updated_at <= ?) ORDER BY id
            """, [.int(now), .int(now - staleAfter)]).compactMap { $0.int("id") }
    }

    /// One delivery.
    public func webhookDelivery(id: Int64) throws -> WebhookDelivery? {
        try query("SELECT * FROM webhook_delivery WHERE id = ?", [.int(id)]).first.map(WebhookDelivery.init)
    }

    /// The delivery log, newest first; with `failedOnly`, just what is not acknowledged.
    public func webhookLog(failedOnly: Bool = false, limit: Int = 200) throws -> [WebhookDelivery] {
        try query("SELECT * FROM webhook_delivery" + (failedOnly ? " WHERE status = 'failed'" : "") + " ORDER BY id DESC LIMIT ?",
                  [.int(Int64(limit))]).map(WebhookDelivery.init)
    }

    /// True when `url` answered 410 Gone and has not been re-enabled.
    public func isWebhookEndpointDisabled(_ url: String) throws -> Bool {
        try setting("webhook.disabled " + url) != nil
    }

    /// Stops (or, with `disabled` false, restarts) automatic deliveries to `url`; true when that changed anything.
    @discardableResult
    public func setWebhookEndpointDisabled(_ url: String, _ disabled: Bool, now: Int64) throws -> Bool {
        try write {
            if disabled {
                try execute("INSERT OR IGNORE INTO setting (name, value) VALUES (?, ?)", [.text("webhook.disabled " + url), .text(String(now))])
                let changed = changes == 1
                // What was waiting for it is failed now, listed by `webhook log --failed` for a retry by hand.
                try execute("""
                    UPDATE webhook_delivery SET status = 'failed', next_attempt_at = NULL,
                      last_error = CASE WHEN last_error = '' THEN 'endpoint disabled (it answered 410 Gone); webhook retry sends it' ELSE last_error END
                    WHERE url = ? AND status IN ('queued', 'failed')
                    """, [.text(url)])
                return changed
            }
            try execute("DELETE FROM setting WHERE name = ?", [.text("webhook.disabled " + url)])
            return changes == 1
        }
    }
}

extension Person {
    /// What an event says about a person.
    public var eventData: [String: JSONOut] {
        ["person": .object(["id": .int(id), "email": .string(email), "name": .string(name), "external_id": .optional(externalID)])]
    }
}
