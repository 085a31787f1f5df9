import Glibc
import LatchkeyCore
import LatchkeyStore

/// Sends recorded events to their endpoints, signed the Standard Webhooks way, through `Curl`
/// (a subprocess, as the `sendmail:` mail transport is).
public struct WebhookSender {
    /// What one attempt came to.
    public enum Outcome: Equatable, Sendable {
        /// A 2xx came back: acknowledged, never sent again.
        case sent
        /// Anything else; it stays recorded and is retried on schedule.
        case failed(String)
        /// Another process had it, it was already acknowledged, or it was not due.
        case skipped
    }

    /// How long one attempt may take.
    public static let timeout: Int64 = 10
    /// A `sending` claim older than this belongs to a process that died; it is taken over.
    static let staleAfter: Int64 = 60

    let config: SiteConfig
    let db: Database

    /// A sender for the site of `config`, through `db`.
    public init(config: SiteConfig, db: Database) {
        self.config = config
        self.db = db
    }

    /// Sends every due delivery of the site, over and over until none is due, then lets go; one
    /// process at a time does this (a lock in the queue folder). Another process that recorded
    /// an event while the lock was held finds it gone or finds nothing due: the holder looks
    /// once more after letting go. Errors go to `report`; what fails stays recorded.
    public static func sendAll(config: SiteConfig, report: (String) -> Void) {
        guard !config.webhooks.isEmpty else { return }
        let folder = Path.parent(of: config.resolve(config.database)) + "/queue"
        let lock = open(folder + "/.webhooks.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { return }
        defer { close(lock) }
        do {
            let db = try Database.open(path: config.resolve(config.database))
            let sender = WebhookSender(config: config, db: db)
            while flock(lock, LOCK_EX | LOCK_NB) == 0 {
                while try sender.deliverDue(now: Clock.now()) != (0, 0) {}
                flock(lock, LOCK_UN)
                guard try !db.dueWebhooks(now: Clock.now(), staleAfter: staleAfter).isEmpty else { return }
            }
        } catch {
            report("webhooks not sent: \(error) (latchkey mail deliver sends them)")
        }
    }

    /// Sends every delivery that is due; returns how many were acknowledged and how many failed.
    @discardableResult
    public func deliverDue(now: Int64) throws -> (sent: Int, failed: Int) {
        var sent = 0, failed = 0
        for id in try db.dueWebhooks(now: now, staleAfter: WebhookSender.staleAfter) {
            switch try deliver(id: id, now: Clock.now()) {
            case .sent: sent += 1
            case .failed: failed += 1
            case .skipped: break
            }
        }
        return (sent, failed)
    }

    /// Sends delivery `id` if it is due (with `force`, now, even to a disabled endpoint or
    /// after retries gave up: `webhook retry`). A 410 Gone disables the endpoint, with an audit
    /// line; a 2xx from a disabled endpoint enables it again.
    public func deliver(id: Int64, now: Int64, force: Bool = false, by actor: String = "webhooks") throws -> Outcome {
        guard let delivery = try db.claimWebhook(id: id, now: now, staleAfter: WebhookSender.staleAfter, force: force) else { return .skipped }
        guard let endpoint = config.webhook(url: delivery.url), let key = WebhookSignature.key(secret: endpoint.secret) else {
            let reason = "\(delivery.url) is no longer in the config's webhooks"
            try db.markWebhookFailed(id: id, httpStatus: nil, error: reason, now: now, retry: false)
            return .failed(reason)
        }
        let (status, error) = post(delivery, key: key, now: now)
        if let status, (200..<300).contains(status) {
            // Once acknowledged it must never go again: a busy database gets three tries to record it.
            for attempt in 1...3 {
                do { try db.markWebhookSent(id: id, httpStatus: status, now: Clock.now()); break } catch where attempt < 3 { continue }
            }
            if try db.setWebhookEndpointDisabled(delivery.url, false, now: now) {
                try db.write { try db.audit(AuditEvent(actor: actor, action: "webhook.enabled", detail: delivery.url), now: now) }
            }
            return .sent
        }
        let reason = status.map { "HTTP \($0)" + (error.isEmpty ? "" : ": " + error) } ?? error
        try db.markWebhookFailed(id: id, httpStatus: status, error: reason, now: Clock.now(), retry: status != 410)
        if status == 410, try db.setWebhookEndpointDisabled(delivery.url, true, now: now) {
            try db.write {
                try db.audit(AuditEvent(actor: actor, action: "webhook.disabled", detail: "\(delivery.url) answered 410 Gone"), now: now)
            }
        }
        return .failed(reason)
    }

    /// POSTs `delivery` once; the HTTP status (nil when none came back) and curl's error line.
    func post(_ delivery: WebhookDelivery, key: [UInt8], now: Int64) -> (Int?, String) {
        let body = Array(delivery.payload.utf8)
        let headers = ["Content-Type: application/json", "User-Agent: Latchkey-Webhooks/1", "webhook-id: " + delivery.messageID,
                       "webhook-timestamp: " + String(now),
                       "webhook-signature: " + WebhookSignature.sign(id: delivery.messageID, timestamp: now, body: body, key: key)]
        do {
            let answer = try Curl.request([("url", delivery.url), ("data-binary", delivery.payload)] + headers.map { ("header", $0) },
                                          keepBody: false, timeout: WebhookSender.timeout)
            return (answer.status, answer.errors)
        } catch {
            return (nil, "\(error)")
        }
    }
}
