import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `user show`, `user find`, `user set-email`, `user disable|enable|delete`, `welcome resend`.
enum PersonCommands {
    static func show(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        let record = try PersonRecord.load(person, services: services, now: Clock.now())
        Console.out(invocation.arguments.flags.contains("json") ? record.json.text : record.text)
    }

    static func find(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let query = try invocation.word(0, "QUERY")
        // The console's search: any part of an email or name (3+ characters), else an address's start.
        let people = try PeopleSearch.find(query, offset: 0, limit: 100, db: invocation.services().db)
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(people.map { .object(["email": .string($0.email), "name": .string($0.name),
                                                            "kind": .string($0.kind), "disabled": .bool($0.disabledAt != nil)]) }).text)
            return
        }
        if people.isEmpty { Console.out("No one matches '\(query)'."); return }
        for person in people {
            Console.out("\(person.email)\t\(person.name)\t\(person.kind)\(person.disabledAt != nil ? " (disabled)" : "")")
        }
    }

    static func setEmail(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let old = try invocation.word(0, "EMAIL"), new = try UserCommands.validEmail(try invocation.word(1, "NEW_EMAIL"))
        guard let person = try services.db.person(email: old) else { throw CommandError("no one with the address \(Person.normalize(old))") }
        let mailID = try People.changeEmail(person, to: new, by: invocation.operator, services: services, now: Clock.now())
        Console.out("Address changed: \(person.email) → \(new). Links voided, sessions ended; the old address was told.")
        try UserCommands.deliverNow(mailID, services)
    }

    static func disable(_ invocation: Invocation) throws { try setDisabled(invocation, true) }
    static func enable(_ invocation: Invocation) throws { try setDisabled(invocation, false) }

    static func setDisabled(_ invocation: Invocation, _ disabled: Bool) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        try People.setDisabled(person, disabled, by: invocation.operator, db: services.db, now: Clock.now())
        Console.out(disabled ? "Login closed for \(person.email); sessions ended, links voided. Nothing else changed."
                             : "Login reopened for \(person.email).")
    }

    static func delete(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["yes"])
        let services = try invocation.services()
        let email = try invocation.word(0, "EMAIL")
        guard let person = try services.db.person(email: email) else { throw CommandError("no one with the address \(Person.normalize(email))") }
        guard invocation.arguments.flags.contains("yes") else {
            throw CommandError("this erases \(person.email) with their links, sessions, access and email history; add --yes to do it")
        }
        try People.erase(person, by: invocation.operator, db: services.db, now: Clock.now())
        Console.out("Erased \(person.email). The audit trail keeps that it happened, not who it was.")
    }

    static func resendWelcome(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let person = try UserCommands.customer(try invocation.word(0, "EMAIL"), services)
        let sent = try UserCommands.worded(services.config) {
            try Support.resendWelcome(person, by: invocation.actor, services: services, now: Clock.now())
        }
        if let link = sent.link {
            Console.out("Welcome email sent again with a set-password link\(link.reused ? " (the same link: still inside the reuse window)" : ""):")
            Console.out(ResetTokens.url(token: link.token, config: services.config))
        } else {
            Console.out("Welcome email sent again with a login link (\(person.email) already has a password; it was not changed).")
        }
        try UserCommands.deliverNow(sent.mailID, services)
    }
}
