import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `offer add|list`, `access grant|revoke`.
enum AccessCommands {
    static func addOffer(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["name"])
        let slug = try invocation.word(0, "SLUG")
        let name = invocation.arguments.options["name"] ?? ""
        let services = try invocation.services()
        try Access.addOffer(slug: slug, name: name, by: invocation.operator, db: services.db, now: Clock.now())
        Console.out("Offer added: \(slug) (\(name))")
    }

    static func listOffers(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let offers = try Access.offers(db: try invocation.services().db)
        if invocation.arguments.flags.contains("json") { Console.out(JSONOut.array(offers.map(\.json)).text); return }
        if offers.isEmpty { Console.out("No offers yet: latchkey offer add SLUG --name NAME"); return }
        for offer in offers { Console.out("\(offer.slug)\t\(offer.name)\t\(offer.members) with access") }
    }

    static func grant(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["no-email"])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL"), slug = try invocation.word(1, "OFFER")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        let wanted = services.config.welcomeOnGrant && !invocation.arguments.flags.contains("no-email")
        let sent = try Support.grant(person, offer: slug, welcome: wanted, by: invocation.actor, services: services, now: Clock.now())
        Console.out("Access granted: \(person.email) → \(slug)")
        if let sent {
            Console.out("Welcome email sent with a set-password link:")
            Console.out(ResetTokens.url(token: sent.link.token, config: services.config))
            try UserCommands.deliverNow(sent.mailID, services)
        } else if wanted, person.passwordHash == nil, person.disabledAt != nil {
            Console.out("No welcome email: \(person.email) is disabled (latchkey user enable \(person.email), then latchkey welcome resend \(person.email)).")
        }
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
