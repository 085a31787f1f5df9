import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// `api-key add|list|revoke`, `webhook log|retry|secret`.
enum IntegrationCommands {
    static func addKey(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["scopes"])
        let name = try invocation.word(0, "NAME")
        guard let list = invocation.arguments.options["scopes"], !list.isEmpty else {
            throw CommandError("missing --scopes (any of \(APIKeys.Scope.allCases.map(\.rawValue).joined(separator: ",")))")
        }
        var scopes = Set<APIKeys.Scope>()
        for word in list.split(separator: ",") {
            guard let scope = APIKeys.Scope(rawValue: String(word).trimmed) else {
                throw CommandError("unknown scope '\(word)' (known: \(APIKeys.Scope.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            scopes.insert(scope)
        }
        let services = try invocation.services()
        let key = try APIKeys.add(name: name, scopes: scopes, by: invocation.operator, services: services, now: Clock.now())
        Console.out(key)
        Console.err("API key \(name) created with \(scopes.map(\.rawValue).sorted().joined(separator: ", ")). It is shown only this once: store it now.")
    }

    static func listKeys(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let keys = try APIKeys.list(db: try invocation.services().db)
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(keys.map { key in
                .object(["name": .string(key.name), "scopes": .array(key.scopes.map(\.rawValue).sorted().map { .string($0) }),
                         "created_at": .string(Clock.iso8601(key.createdAt)), "created_by": .string(key.createdBy),
                         "last_used_at": .optional(key.lastUsedAt.map(Clock.iso8601)), "revoked_at": .optional(key.revokedAt.map(Clock.iso8601))])
            }).text)
            return
        }
        if keys.isEmpty { Console.out("No API keys yet: latchkey api-key add NAME --scopes people:read,…"); return }
        for key in keys {
            let state = key.revokedAt.map { "revoked \(Clock.readable($0))" } ?? (key.lastUsedAt.map { "last used \(Clock.readable($0))" } ?? "never used")
            Console.out("\(key.name)\t\(key.scopes.map(\.rawValue).sorted().joined(separator: ","))\t\(state)")
        }
    }

    static func revokeKey(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let name = try invocation.word(0, "NAME")
        let services = try invocation.services()
        do { try APIKeys.revoke(name: name, by: invocation.operator, db: services.db, now: Clock.now()) } catch let error as AccessError {
            throw CommandError(error.description)
        }
        Console.out("API key \(name) revoked: it no longer works.")
    }

    static func log(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["failed", "json"])
        let deliveries = try invocation.services().db.webhookLog(failedOnly: invocation.arguments.flags.contains("failed"))
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(deliveries.map { d in
                .object(["id": .int(d.id), "message_id": .string(d.messageID), "event": .string(d.event), "url": .string(d.url),
                         "status": .string(d.status), "attempts": .int(d.attempts), "last_status": d.lastStatus.map { .int($0) } ?? .null,
                         "last_error": .string(d.lastError), "created_at": .string(Clock.iso8601(d.createdAt)),
                         "sent_at": .optional(d.sentAt.map(Clock.iso8601)), "next_attempt_at": .optional(d.nextAttemptAt.map(Clock.iso8601))])
            }).text)
            return
        }
        if deliveries.isEmpty { Console.out("No webhook deliveries."); return }
        for d in deliveries {
            let next = d.status == "failed" ? (d.nextAttemptAt.map { ", next try \(Clock.readable($0))" } ?? ", retries over: latchkey webhook retry \(d.id)") : ""
            let error = d.lastError.isEmpty ? "" : " (\(d.lastError))"
            Console.out("#\(d.id)\t\(Clock.readable(d.createdAt))\t\(d.event)\t\(d.url)\t\(d.status), \(d.attempts) attempts\(error)\(next)")
        }
    }

    static func retry(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let text = try invocation.word(0, "ID")
        guard let id = Int64(text.hasPrefix("#") ? String(text.dropFirst()) : text) else { throw CommandError("ID is a delivery number from latchkey webhook log") }
        let services = try invocation.services()
        guard let delivery = try services.db.webhookDelivery(id: id) else { throw CommandError("no webhook delivery #\(id) (see latchkey webhook log)") }
        guard delivery.status != "sent" else { throw CommandError("delivery #\(id) was already acknowledged \(Clock.readable(delivery.sentAt ?? 0))") }
        let outcome = try WebhookSender(config: services.config, db: services.db).deliver(id: id, now: Clock.now(), force: true, by: invocation.operator)
        try services.db.write {
            try services.db.audit(AuditEvent(actor: invocation.operator, action: "webhook.retried", detail: "#\(id) \(delivery.event) to \(delivery.url)"), now: Clock.now())
        }
        switch outcome {
        case .sent: Console.out("Delivery #\(id) sent: \(delivery.url) acknowledged it.")
        case let .failed(reason): throw CommandError("delivery #\(id) failed again: \(reason)")
        case .skipped: throw CommandError("delivery #\(id) is being sent by another process right now")
        }
    }

    static func secret(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        Console.out(WebhookSignature.newSecret())
    }
}
