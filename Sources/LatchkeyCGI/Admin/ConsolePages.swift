import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The console's site-wide pages: failed mail, the audit trail, and offers.
enum ConsolePages {
    /// Rows on the failed-mail and audit pages.
    static let rows = 100

    static func failedMail(_ console: Console) throws -> Reply {
        try console.require(.failedMail)
        let records = try console.services.db.mailHistory(failedOnly: true, limit: rows)
        return try console.page("mail", ["mail": .list(records.map { mail in
            ["id": .string(String(mail.id)), "when": Console.when(mail.createdAt), "kind": .string(mail.kind), "recipient": .string(mail.recipient),
             "error": .string(mail.lastError), "attempts": .string(String(mail.attempts)),
             "person": mail.personID.map { .string(console.base + "/people/\($0)") } ?? false]
        }), "none": .bool(records.isEmpty)])
    }

    static func audit(_ console: Console) throws -> Reply {
        try console.require(.audit)
        let query = try console.context.request.query()
        func filter(_ name: String) -> String? { query[name].flatMap { $0.trimmed.isEmpty ? nil : String($0.trimmed.prefix(200)) } }
        var personID: Int64?
        if let email = filter("person") {
            personID = try console.services.db.person(email: email)?.id ?? -1
        }
        let entries = try console.services.db.auditTrail(personID: personID, actor: filter("actor"), action: filter("action"), limit: rows)
        return try console.page("audit", [
            "person": .string(filter("person") ?? ""), "actor": .string(filter("actor") ?? ""), "action_filter": .string(filter("action") ?? ""),
            "entries": .list(entries.map { entry in
                ["when": Console.when(entry.at), "actor": .string(entry.actor), "action": .string(entry.action), "subject": .string(entry.subject),
                 "from": .string(entry.remoteAddr), "detail": .string(entry.detail)]
            }), "none": .bool(entries.isEmpty),
        ])
    }

    static func offers(_ console: Console) throws -> Reply {
        try console.require(.offers)
        let query = try console.context.request.query()
        let rows = try console.services.db.query("""
            SELECT o.slug, o.name, (SELECT count(*) FROM access_grant g WHERE g.offer_id = o.id AND g.revoked_at IS NULL) AS members
            FROM offer o ORDER BY o.slug
            """)
        return try console.page("offers", [
            "offers": .list(rows.map { ["slug": .string($0.text("slug") ?? ""), "name": .string($0.text("name") ?? ""),
                                        "members": .string(String($0.int("members") ?? 0))] }),
            "step_up": .bool(console.stepUpDue), "message": console.message(query),
        ])
    }

    static func addOffer(_ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        try console.require(.offers)
        guard try console.steppedUp(.offers, form) else { return console.redirect("/offers", message: "step_up_refused") }
        do {
            try Access.addOffer(slug: form["slug"] ?? "", name: form["name"] ?? "", by: console.actor.name, db: console.services.db, now: console.now)
        } catch is AccessError {
            return console.redirect("/offers", message: "offer_refused")
        }
        return console.redirect("/offers", message: "offer_added")
    }
}
