import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `offer add|list`, `access grant|revoke`.
enum AccessCommands {
    static func addOffer(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["name"])
        let slug = try invocation.word(0, "SLUG")
        guard slug.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }), slug.count <= 64 else {
            throw CommandError("an offer slug is letters, digits, - and _ (at most 64)")
        }
        guard let name = invocation.arguments.options["name"], !name.trimmed.isEmpty else { throw CommandError("missing --name") }
        let services = try invocation.services()
        let now = Clock.now()
        try services.db.write {
            guard try services.db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(slug)]).isEmpty else { throw CommandError("offer '\(slug)' already exists") }
            try services.db.execute("INSERT INTO offer (slug, name, created_at) VALUES (?, ?, ?)", [.text(slug), .text(name), .int(now)])
            try services.db.audit(AuditEvent(actor: invocation.operator, action: "offer.created", detail: slug), now: now)
        }
        Console.out("Offer added: \(slug) (\(name))")
    }

    static func listOffers(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let rows = try invocation.services().db.query("""
            SELECT o.slug, o.name, (SELECT count(*) FROM access_grant g WHERE g.offer_id = o.id AND g.revoked_at IS NULL) AS members
            FROM offer o ORDER BY o.slug
            """)
        let records: [[String: JSONOut]] = rows.map { ["slug": .string($0.text("slug") ?? ""), "name": .string($0.text("name") ?? ""), "members": .int($0.int("members") ?? 0)] }
        if invocation.arguments.flags.contains("json") { Console.out(JSONOut.array(records.map { .object($0) }).text); return }
        if rows.isEmpty { Console.out("No offers yet: latchkey offer add SLUG --name NAME"); return }
        for row in rows { Console.out("\(row.text("slug") ?? "")\t\(row.text("name") ?? "")\t\(row.int("members") ?? 0) with access") }
    }

    static func grant(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["no-email"])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL"), slug = try invocation.word(1, "OFFER")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        let now = Clock.now()
        try services.db.write { try Access.grant(person: person, offer: slug, by: invocation.operator, db: services.db, now: now) }
        Console.out("Access granted: \(person.email) → \(slug)")
        let welcome = services.config.welcomeOnGrant && !invocation.arguments.flags.contains("no-email") && person.passwordHash == nil
        guard welcome, let customer = try services.db.person(id: person.id) else { return }
        guard Recovery.refusal(for: customer) == nil else {
            Console.out("No welcome email: \(customer.email) is disabled (latchkey user enable \(customer.email), then latchkey welcome resend \(customer.email)).")
            return
        }
        let sent = try Recovery.sendLink(to: customer, welcome: true, by: invocation.operator, services: services, now: now)
        Console.out("Welcome email sent with a set-password link:")
        Console.out(ResetTokens.url(token: sent.link.token, config: services.config))
        try UserCommands.deliverNow(sent.mailID, services)
    }

    static func revoke(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL"), slug = try invocation.word(1, "OFFER")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        try services.db.write { try Access.revoke(person: person, offer: slug, by: invocation.operator, db: services.db, now: Clock.now()) }
        Console.out("Access revoked: \(person.email) → \(slug)")
    }
}
