import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `audit`: read the audit trail, newest first.
enum AuditCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["person", "actor", "action", "since", "json"])
        let options = invocation.arguments.options
        let services = try invocation.services()
        var personID: Int64?
        if let email = options["person"] {
            guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
            personID = person.id
        }
        var since: Int64?
        if let text = options["since"] {
            guard let span = TimeSpan(text) else { throw CommandError("--since must be a duration like 90s, 30m, 24h or 7d") }
            since = Clock.now() - span.seconds
        }
        let entries = try services.db.auditTrail(personID: personID, actor: options["actor"], action: options["action"], since: since, limit: 1000)
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(entries.map { entry in
                .object(["id": .int(entry.id), "at": .int(entry.at), "actor": .string(entry.actor), "action": .string(entry.action),
                         "subject": .string(entry.subject), "remote_addr": .string(entry.remoteAddr), "detail": .string(entry.detail)])
            }).text)
            return
        }
        if entries.isEmpty { Console.out("No audit entries match."); return }
        for entry in entries {
            Console.out("\(Clock.readable(entry.at))  \(entry.actor.padding(24))  \(entry.action.padding(22))  \(entry.subject)"
                        + (entry.remoteAddr.isEmpty ? "" : "  from \(entry.remoteAddr)") + (entry.detail.isEmpty ? "" : "  (\(entry.detail))"))
        }
    }
}
