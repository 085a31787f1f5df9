import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `user add`, `contact add`, `user reset`, `user set-password`.
enum UserCommands {
    static func add(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["name", "offer", "no-email"])
        let email = try validEmail(try invocation.word(0, "EMAIL"))
        let name = try validName(invocation.arguments.options["name"])
        let services = try invocation.services()
        let now = Clock.now()
        let person: Person = try services.db.write {
            guard try services.db.person(email: email) == nil else { throw CommandError("\(email) already exists (see latchkey user show \(email))") }
            let person = try services.db.insertPerson(email: email, name: name, kind: "customer", now: now)
            if let slug = invocation.arguments.options["offer"] { try Access.grant(person: person, offer: slug, by: invocation.operator, db: services.db, now: now) }
            try services.db.audit(AuditEvent(actor: invocation.operator, action: "person.created", personID: person.id, subject: email, detail: "customer"), now: now)
            return person
        }
        // Without an offer they can set a password and log in, but only to their account page.
        let noAccess = invocation.arguments.options["offer"] == nil
            ? "\(email) has no access yet: latchkey access grant \(email) OFFER gives it (see latchkey offer list)." : nil
        if invocation.arguments.flags.contains("no-email") {
            Console.out("Account successfully created.")
            if let noAccess { Console.out(noAccess) }
            return
        }
        let sent = try Recovery.sendLink(to: person, welcome: true, by: invocation.operator, services: services, now: now)
        Console.out("Account successfully created and reset password email sent.")
        Console.out(ResetTokens.url(token: sent.link.token, config: services.config))
        if let noAccess { Console.out(noAccess) }
        try deliverNow(sent.mailID, services)
    }

    static func addContact(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["name"])
        let email = try validEmail(try invocation.word(0, "EMAIL"))
        let name = try validName(invocation.arguments.options["name"])
        let services = try invocation.services()
        let now = Clock.now()
        try services.db.write {
            guard try services.db.person(email: email) == nil else { throw CommandError("\(email) already exists") }
            let person = try services.db.insertPerson(email: email, name: name, kind: "contact", now: now)
            try services.db.audit(AuditEvent(actor: invocation.operator, action: "person.created", personID: person.id, subject: email, detail: "contact"), now: now)
        }
        Console.out("Contact added: \(email) (no login access; `latchkey access grant \(email) OFFER` makes them a customer).")
    }

    static func reset(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let person = try linkRecipient(try invocation.word(0, "EMAIL"), services)
        let sent = try Recovery.sendLink(to: person, by: invocation.operator, services: services, now: Clock.now())
        Console.out("Reset password email sent.")
        Console.out(ResetTokens.url(token: sent.link.token, config: services.config))
        Console.out("Expires \(Clock.readable(sent.link.expiresAt))" + (sent.link.reused
            ? " (the same link as sent \(Clock.readable(sent.link.createdAt)) by \(sent.link.createdBy): still inside the reuse window)" : ""))
        try deliverNow(sent.mailID, services)
    }

    static func setPassword(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["temporary", "notify"])
        let services = try invocation.services()
        let person = try customer(try invocation.word(0, "EMAIL"), services)
        let password = try PasswordInput.read()
        if let problem = PasswordPolicy.problem(password: password, confirmation: password, email: person.email, config: services.config) {
            throw CommandError("password rejected: \(services.config.policySentence(problem))")
        }
        let temporary = invocation.arguments.flags.contains("temporary")
        let hash = try PasswordHash.hash(password, parameters: services.config.password.argon2)
        let now = Clock.now()
        let mailID: Int64? = try services.db.write {
            try services.db.setPassword(personID: person.id, hash: hash, mustChange: temporary, now: now)
            try services.db.audit(AuditEvent(actor: invocation.operator, action: temporary ? "password.set-temporary" : "password.set",
                                             personID: person.id, subject: person.email), now: now)
            guard invocation.arguments.flags.contains("notify") else { return nil }
            return try services.mailer.queue(temporary ? .temporaryPassword : .passwordChanged, to: person, values: [:], by: invocation.operator, now: now)
        }
        Console.out(temporary ? "Temporary password set: \(person.email) must choose a new one at next login." : "Password set for \(person.email).")
        Console.out("Outstanding reset links were voided and every session ended.")
        if let mailID { try deliverNow(mailID, services) }
    }

    /// Delivers a message the command just queued, and says so when it failed: the message
    /// stays in the history as failed, for `mail retry` or `mail deliver`.
    static func deliverNow(_ id: Int64, _ services: Services) throws {
        if case let .failed(reason) = try services.mailer.deliver(id: id, now: Clock.now()) {
            Console.err("warning: the email could not be delivered (\(reason)); it is kept as message \(id): latchkey mail retry \(id)")
        }
    }

    /// A display name: no control characters (it goes into mail headers), at most 200 characters.
    static func validName(_ raw: String?) throws -> String {
        let name = (raw ?? "").trimmed
        guard !name.hasControlCharacters, name.count <= 200 else {
            throw CommandError("--name must be one line of at most 200 characters")
        }
        return name
    }

    static func validEmail(_ raw: String) throws -> String {
        let email = Person.normalize(raw)
        guard Person.isPlausibleEmail(email) else { throw CommandError("'\(raw.prefix(80))' is not an email address") }
        return email
    }

    /// The customer with `email` who may be sent a link, or an error that says why not.
    static func linkRecipient(_ email: String, _ services: Services) throws -> Person {
        let person = try customer(email, services)
        if Recovery.refusal(for: person) == .disabled {
            throw CommandError("\(person.email) is disabled: enable login first (latchkey user enable \(person.email))")
        }
        return person
    }

    /// The customer with `email`, or an error that says why not.
    static func customer(_ email: String, _ services: Services) throws -> Person {
        guard let person = try services.db.person(email: email) else {
            throw CommandError("no one with the address \(Person.normalize(email)) (see latchkey user find)")
        }
        guard person.isCustomer else { throw CommandError("\(person.email) is a contact, not a customer: grant access first") }
        return person
    }
}

extension SiteConfig {
    /// A policy message key as an English sentence for the command line.
    func policySentence(_ key: String) -> String {
        switch key {
        case "too_short": return "shorter than \(password.minLength) characters"
        case "too_long": return "longer than \(password.maxLength) characters"
        case "same_as_email": return "the same as the email address"
        case "mismatch": return "the two entries differ"
        default: return key
        }
    }
}
