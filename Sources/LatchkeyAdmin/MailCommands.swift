import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// `mail log`, `mail retry`, `mail deliver`.
enum MailCommands {
    static func log(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["failed", "json"])
        let services = try invocation.services()
        var personID: Int64?
        if let email = invocation.rest.first {
            guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
            personID = person.id
        }
        let records = try services.db.mailHistory(personID: personID, failedOnly: invocation.arguments.flags.contains("failed"))
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(records.map(json)).text)
            return
        }
        if records.isEmpty { Console.out("No messages."); return }
        for record in records { Console.out(line(record)) }
    }

    static func line(_ r: MailRecord) -> String {
        let when = Clock.readable(r.sentAt ?? r.createdAt)
        var text = "#\(r.id)  \(when)  \(r.status.padding(7))  \(r.kind.padding(18))  \(r.recipient)  \"\(r.subject)\""
        if r.status == "failed" { text += "\n      error (attempt \(r.attempts)): \(r.lastError); next try \(Clock.readable(r.nextAttemptAt)) or now: latchkey mail retry \(r.id)" }
        return text
    }

    static func json(_ r: MailRecord) -> JSONOut {
        .object(["id": .int(r.id), "kind": .string(r.kind), "recipient": .string(r.recipient), "subject": .string(r.subject),
                 "status": .string(r.status), "attempts": .int(r.attempts), "last_error": .string(r.lastError),
                 "created_at": .int(r.createdAt), "sent_at": r.sentAt.map { .int($0) } ?? .null, "created_by": .string(r.createdBy)])
    }

    static func retry(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["failed"])
        if invocation.arguments.flags.contains("failed") {
            guard invocation.rest.isEmpty else { throw CommandError("give either ID or --failed, not both") }
            return try retryFailed(invocation)
        }
        guard let id = Int64(try invocation.word(0, "ID")) else { throw CommandError("ID must be a number (see latchkey mail log)") }
        let services = try invocation.services()
        let outcome = try UserCommands.worded(services.config) {
            try Support.retryMail(id, of: nil, by: invocation.actor, services: services, now: Clock.now())
        }
        switch outcome {
        case .sent: Console.out("Message #\(id) sent to \(try services.db.mailRecord(id: id)?.recipient ?? "").")
        case let .failed(reason): throw CommandError("message #\(id) failed again: \(reason)")
        case .skipped: throw CommandError("message #\(id) is being sent by another process")
        }
    }

    /// `mail retry --failed`: every failed message, now, after the transport was fixed.
    static func retryFailed(_ invocation: Invocation) throws {
        let services = try invocation.services()
        let result = try services.mailer.retryFailed(now: Clock.now())
        let summary = "mail retry: \(result.sent) sent, \(result.failed) failed again"
        guard result.failed == 0 else { throw CommandError(summary + " (see latchkey mail log --failed)") }
        Console.out(summary)
    }

    static func deliver(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        // Web requests whose after-work never ran (its process was killed) wait in the queue.
        let queue = WorkQueue(database: services.config.resolve(services.config.database))
        let jobs = queue.waiting()
        // Drained even with nothing waiting: that also removes journals their workers left.
        if let lock = queue.tryLock() {
            let failed = queue.drain(lock: lock, config: services.config) { Console.err("mail deliver: \($0)") }
            if jobs > 0 { Console.out("mail deliver: \(jobs) queued web requests worked, \(failed) failed") }
        }
        let result = try services.mailer.deliverDue(now: Clock.now())
        let waiting = try services.db.query("SELECT count(*) AS n FROM mail WHERE status IN ('queued', 'failed')").first?.int("n") ?? 0
        Console.out("mail deliver: \(result.sent) sent, \(result.failed) failed, \(waiting) waiting")
        // Outbound events are delivered on the same cron line.
        guard !services.config.webhooks.isEmpty else { return }
        let events = try WebhookSender(config: services.config, db: services.db).deliverDue(now: Clock.now())
        let pending = try services.db.query("SELECT count(*) AS n FROM webhook_delivery WHERE status IN ('queued', 'failed') AND next_attempt_at IS NOT NULL").first?.int("n") ?? 0
        Console.out("webhooks: \(events.sent) sent, \(events.failed) failed, \(pending) waiting")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
