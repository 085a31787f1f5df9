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
        let offer = invocation.arguments.options["offer"]
        let created = try worded(services.config) {
            try Support.createCustomer(email: email, name: name, offer: offer, sendEmail: !invocation.arguments.flags.contains("no-email"),
                                       by: invocation.actor, services: services, now: Clock.now())
        }
        // Without an offer they can set a password and log in, but only to their account page.
        let noAccess = offer == nil ? "\(email) has no access yet: latchkey access grant \(email) OFFER gives it (see latchkey offer list)." : nil
        guard let link = created.link, let mailID = created.mailID else {
            Console.out("Account successfully created.")
            if let noAccess { Console.out(noAccess) }
            return
        }
        Console.out("Account successfully created and reset password email sent.")
        Console.out(ResetTokens.url(token: link.token, config: services.config))
        if let noAccess { Console.out(noAccess) }
        try deliverNow(mailID, services)
    }

    static func addContact(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["name"])
        let email = try validEmail(try invocation.word(0, "EMAIL"))
        let name = try validName(invocation.arguments.options["name"])
        let services = try invocation.services()
        do {
            _ = try Support.addContact(email: email, name: name, by: invocation.actor, services: services, now: Clock.now())
        } catch Support.Refusal.exists(let taken) {
            throw CommandError("\(taken) already exists")
        }
        Console.out("Contact added: \(email) (no login access; `latchkey access grant \(email) OFFER` makes them a customer).")
    }

    static func reset(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let person = try customer(try invocation.word(0, "EMAIL"), services)
        let sent = try worded(services.config) { try Support.sendReset(person, by: invocation.actor, services: services, now: Clock.now()) }
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
        let temporary = invocation.arguments.flags.contains("temporary")
        let mailID = try worded(services.config) {
            try Support.setPassword(person, password: password, confirmation: password, temporary: temporary,
                                    notify: invocation.arguments.flags.contains("notify"), by: invocation.actor, services: services, now: Clock.now())
        }
        Console.out(temporary ? "Temporary password set: \(person.email) must choose a new one at next login." : "Password set for \(person.email).")
        Console.out("Outstanding reset links were voided and every session ended.")
        if let mailID { try deliverNow(mailID, services) }
    }

    /// Runs a core action, wording its refusal for the command line: the same sentences as
    /// always, with the command that helps.
    static func worded<T>(_ config: SiteConfig, _ action: () throws -> T) throws -> T {
        do {
            return try action()
        } catch let refusal as Support.Refusal {
            switch refusal {
            case let .exists(email): throw CommandError("\(email) already exists (see latchkey user show \(email))")
            case let .contact(email): throw CommandError("\(email) is a contact, not a customer: grant access first")
            case let .disabled(email): throw CommandError("\(email) is disabled: enable login first (latchkey user enable \(email))")
            case let .password(key): throw CommandError("password rejected: \(config.policySentence(key))")
            case let .mail(reason): throw CommandError(reason)
            }
        }
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
        case "too_common": return "too common or too easy to guess; choose another"
        case "mismatch": return "the two entries differ"
        default: return key
        }
    }
}
