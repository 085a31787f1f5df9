import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// What support staff do for a customer, once: the command line and the staff console (and the
/// API) call these, and only word the outcome their own way. Each records who did it.
public enum Support {
    /// Why an action cannot be done; front ends word it (the CLI adds the command that helps).
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        /// Someone already has the address.
        case exists(String)
        /// A link or a password needs a customer, and this is a contact.
        case contact(String)
        /// A link cannot go to a disabled person.
        case disabled(String)
        /// The password breaks a rule; the `messages.*` key says which.
        case password(String)
        /// The message is not this person's, or was already sent.
        case mail(String)

        /// A plain sentence for logs.
        public var description: String {
            switch self {
            case let .exists(email): "\(email) already exists"
            case let .contact(email): "\(email) is a contact, not a customer"
            case let .disabled(email): "\(email) is disabled"
            case let .password(key): "password rejected (\(key))"
            case let .mail(reason): reason
            }
        }
    }

    /// Who acts, for the audit trail: `staff:EMAIL` from the console, the operator from the CLI.
    public struct Actor: Sendable {
        /// The audit trail's name for them.
        public let name: String
        /// Their client address; empty from the command line.
        public let remoteAddr: String

        /// `name` acting from `remoteAddr`.
        public init(_ name: String, remoteAddr: String = "") {
            self.name = name
            self.remoteAddr = remoteAddr
        }
    }

    /// What creating a customer did: the person, and the welcome link and mail unless asked not to send.
    public struct Created: Sendable {
        /// The new person.
        public let person: Person
        /// The set-password link in the welcome email, if one was sent.
        public let link: ResetTokens.Link?
        /// The queued welcome email, if one was sent.
        public let mailID: Int64?
    }

    /// Creates a customer, with access to `offer` when given, and sends the welcome email with a
    /// set-password link unless `sendEmail` is false.
    public static func createCustomer(email: String, name: String, offer: String?, sendEmail: Bool, by actor: Actor,
                                      services: Services, now: Int64) throws -> Created {
        let db = services.db
        let person: Person = try db.write {
            let person = try insert(email: email, name: name, kind: "customer", by: actor, db: db, now: now)
            if let offer { try Access.grant(person: person, offer: offer, by: actor.name, remoteAddr: actor.remoteAddr, db: db, now: now) }
            return person
        }
        guard sendEmail else { return Created(person: person, link: nil, mailID: nil) }
        let sent = try Recovery.sendLink(to: person, welcome: true, by: actor.name, remoteAddr: actor.remoteAddr, services: services, now: now)
        return Created(person: person, link: sent.link, mailID: sent.mailID)
    }

    /// Adds a contact: someone on file without login access.
    public static func addContact(email: String, name: String, by actor: Actor, services: Services, now: Int64) throws -> Person {
        try services.db.write { try insert(email: email, name: name, kind: "contact", by: actor, db: services.db, now: now) }
    }

    /// Adds a person of `kind`, refusing a taken address, and records it. Call inside `write`.
    static func insert(email: String, name: String, kind: String, locale: String = "", externalID: String? = nil, by actor: Actor,
                       db: Database, now: Int64) throws -> Person {
        guard try db.person(email: email) == nil else { throw Refusal.exists(Person.normalize(email)) }
        let person = try db.insertPerson(email: email, name: name, kind: kind, locale: locale, externalID: externalID, now: now)
        try db.audit(AuditEvent(actor: actor.name, action: "person.created", personID: person.id, subject: person.email,
                                remoteAddr: actor.remoteAddr, detail: kind), now: now)
        return person
    }

    /// Emails `person` a reset link (the same one inside the reuse window).
    public static func sendReset(_ person: Person, by actor: Actor, services: Services, now: Int64) throws -> (link: ResetTokens.Link, mailID: Int64) {
        try refuseLink(person)
        return try Recovery.sendLink(to: person, by: actor.name, remoteAddr: actor.remoteAddr, services: services, now: now)
    }

    /// Resends the welcome email without changing the password: a set-password link when none
    /// was ever set (returned), else a login link.
    public static func resendWelcome(_ person: Person, by actor: Actor, services: Services, now: Int64) throws -> (link: ResetTokens.Link?, mailID: Int64) {
        try refuseLink(person)
        if person.passwordHash == nil {
            let sent = try Recovery.sendLink(to: person, welcome: true, by: actor.name, remoteAddr: actor.remoteAddr, services: services, now: now)
            return (sent.link, sent.mailID)
        }
        let db = services.db
        let mailID = try db.write {
            try db.audit(AuditEvent(actor: actor.name, action: "welcome.sent", personID: person.id, subject: person.email,
                                    remoteAddr: actor.remoteAddr, detail: "login link (password already set)"), now: now)
            return try services.mailer.queue(.welcome, to: person, values: ["has_password": true], by: actor.name, now: now)
        }
        return (nil, mailID)
    }

    /// Sets `person`'s password (checked against the policy). `temporary` makes them choose a new
    /// one at next login; `notify` emails them (never the password). Voids links, ends sessions.
    public static func setPassword(_ person: Person, password: String, confirmation: String, temporary: Bool, notify: Bool,
                                   by actor: Actor, services: Services, now: Int64) throws -> Int64? {
        guard person.isCustomer else { throw Refusal.contact(person.email) }
        if let problem = try PasswordPolicy.problem(password: password, confirmation: confirmation, email: person.email,
                                                    name: person.name, config: services.config) {
            throw Refusal.password(problem)
        }
        let hash = try PasswordHash.hash(password, parameters: services.config.password.argon2)
        let db = services.db
        return try db.write {
            try db.setPassword(personID: person.id, hash: hash, mustChange: temporary, now: now)
            try db.audit(AuditEvent(actor: actor.name, action: temporary ? "password.set-temporary" : "password.set",
                                    personID: person.id, subject: person.email, remoteAddr: actor.remoteAddr), now: now)
            guard notify else { return nil }
            return try services.mailer.queue(temporary ? .temporaryPassword : .passwordChanged, to: person, values: [:], by: actor.name, now: now)
        }
    }

    /// Ends every session of `person` ("log them out everywhere"); returns how many.
    @discardableResult
    public static func endSessions(_ person: Person, by actor: Actor, services: Services, now: Int64) throws -> Int {
        let db = services.db
        return try db.write {
            try db.execute("DELETE FROM session WHERE person_id = ?", [.int(person.id)])
            let ended = db.changes
            try db.audit(AuditEvent(actor: actor.name, action: "sessions.ended", personID: person.id, subject: person.email,
                                    remoteAddr: actor.remoteAddr, detail: "\(ended) ended"), now: now)
            return ended
        }
    }

    /// Sends message `mailID` of `person` again now; a message of someone else is refused.
    public static func retryMail(_ mailID: Int64, of person: Person?, by actor: Actor, services: Services, now: Int64) throws -> Mailer.Delivery {
        guard let record = try services.db.mailRecord(id: mailID), person == nil || record.personID == person?.id else {
            throw Refusal.mail("no message #\(mailID)" + (person.map { " for \($0.email)" } ?? ""))
        }
        guard record.status != "sent" else { throw Refusal.mail("message #\(mailID) was already sent \(Clock.readable(record.sentAt ?? 0))") }
        let outcome = try services.mailer.deliver(id: mailID, now: now, force: true)
        try services.db.write {
            try services.db.audit(AuditEvent(actor: actor.name, action: "mail.retried", personID: record.personID, subject: record.recipient,
                                             remoteAddr: actor.remoteAddr, detail: "#\(mailID): \(outcome == .sent ? "sent" : "not sent")"), now: now)
        }
        return outcome
    }

    /// Grants `person` access to `offer` (a contact becomes a customer). With `welcome`, someone
    /// who never set a password and may receive a link gets the welcome email; its link and
    /// mail are returned. Granting what they already hold changes nothing and sends nothing
    /// (`welcome resend` is for that).
    public static func grant(_ person: Person, offer: String, welcome: Bool, by actor: Actor, services: Services,
                             now: Int64) throws -> (link: ResetTokens.Link, mailID: Int64)? {
        let changed = try services.db.write {
            try Access.grant(person: person, offer: offer, by: actor.name, remoteAddr: actor.remoteAddr, db: services.db, now: now)
        }
        guard changed, welcome, person.passwordHash == nil, let customer = try services.db.person(id: person.id),
              Recovery.refusal(for: customer) == nil else { return nil }
        return try Recovery.sendLink(to: customer, welcome: true, by: actor.name, remoteAddr: actor.remoteAddr, services: services, now: now)
    }

    static func refuseLink(_ person: Person) throws {
        switch Recovery.refusal(for: person) {
        case .contact: throw Refusal.contact(person.email)
        case .disabled: throw Refusal.disabled(person.email)
        case nil: return
        }
    }
}
