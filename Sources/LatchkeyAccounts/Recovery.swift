import LatchkeyCore
import LatchkeyMail
import LatchkeySite
import LatchkeyStore

/// Password recovery: sending links and setting a password from one. The CGIs and the admin
/// tool both come here, so the token and mail rules exist once.
public enum Recovery {
    /// What `resetPassword` did.
    public enum ResetOutcome: Equatable, Sendable {
        /// Password changed; the "password changed" email is queued as `mailID`.
        case done(personID: Int64, mailID: Int64)
        /// The link is expired, used, voided or unknown.
        case expired
        /// The new password breaks a rule; the `messages.*` key says which.
        case rejected(String)
    }

    /// Why no link may go to a person, whoever asks: a contact has no login to set a password
    /// for, and a disabled person's login is closed (a link would reopen it behind the operator's back).
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case contact
        case disabled

        /// What the refusal means, without the front end's advice.
        public var description: String {
            switch self {
            case .contact: "is a contact, not a customer"
            case .disabled: "is disabled"
            }
        }
    }

    /// Why `person` may not be sent a reset or welcome link, or nil when they may.
    public static func refusal(for person: Person) -> Refusal? {
        !person.isCustomer ? .contact : person.disabledAt != nil ? .disabled : nil
    }

    /// Sends `person` a set-password link (a reset, or the welcome email's), reusing the live
    /// one inside the reuse window. Returns the link and the queued mail's id. Its own transaction
    /// (a savepoint inside another `write`). Throws `Refusal` for a contact or a disabled person.
    public static func sendLink(to person: Person, welcome: Bool = false, language: String? = nil, by actor: String,
                                remoteAddr: String = "", services: Services, now: Int64) throws -> (link: ResetTokens.Link, mailID: Int64) {
        if let refusal = refusal(for: person) { throw refusal }
        let config = services.config
        let tokens = ResetTokens(db: services.db, key: services.key)
        try services.mailer.prepare([welcome ? .welcome : .reset])
        return try services.db.write {
            let lifetime = welcome ? config.reset.welcomeLinkLifetime : config.reset.linkLifetime
            let link = try tokens.issue(personID: person.id, purpose: welcome ? "welcome" : "reset", lifetime: lifetime,
                                        reuseWindow: config.reset.reuseWindow, by: actor, now: now)
            let code = services.mailer.language(for: person, requested: language)
            let table = try services.mailer.table(code)
            let words = PageContext.words(for: TimeSpan(seconds: max(link.expiresAt - now, 60)), table: table)
            let mailID = try services.mailer.queue(welcome ? .welcome : .reset, to: person, values: [
                "link": .string(ResetTokens.url(token: link.token, config: config, language: code)),
                "expires": .string(words),
            ], language: code, by: actor, now: now)
            try services.db.audit(AuditEvent(actor: actor, action: welcome ? "welcome.sent" : "reset.sent", personID: person.id,
                                             subject: person.email, remoteAddr: remoteAddr,
                                             detail: link.reused ? "same link re-sent (reuse window)" : "new link"), now: now)
            return (link, mailID)
        }
    }

    /// The work behind the "Forgot password?" form, done after the answer has gone out:
    /// throttle, look up, and mail a link only to a customer who can log in. Returns the
    /// queued mail ids (none for unknown, contact, disabled or throttled addresses).
    public static func requestFromWeb(email rawEmail: String, language: String, remoteAddr: String,
                                      services: Services, now: Int64) throws -> [Int64] {
        let email = Person.normalize(rawEmail)
        let config = services.config, db = services.db
        let throttleKey = services.key.subkey(.throttleHash)
        let (allowed, person): (Bool, Person?) = try db.write {
            let byIP = try db.throttleHit(scope: "forgot:ip", key: remoteAddr, limit: config.throttle.forgotPerIP, hashKey: throttleKey, now: now)
            let byAddress = try db.throttleHit(scope: "forgot:address", key: email, limit: config.throttle.forgotPerAddress, hashKey: throttleKey, now: now)
            let person = try db.person(email: email)
            let reason: String? = !byIP ? "throttled (client IP)" : !byAddress ? "throttled (address)"
                : person == nil ? "unknown address" : person!.isCustomer == false ? "contact, not a customer"
                : person!.disabledAt != nil ? "disabled" : nil
            if let reason {
                try db.audit(AuditEvent(actor: "web", action: "reset.refused", personID: person?.id, subject: person?.email ?? "",
                                        remoteAddr: remoteAddr, detail: reason), now: now)
                return (false, person)
            }
            return (true, person)
        }
        guard allowed, var person else { return [] }
        if person.locale.isEmpty, config.locales.contains(language), language != config.defaultLocale {
            // Remember the language they asked in, so every later email speaks it too.
            try db.write { try db.execute("UPDATE person SET locale = ? WHERE id = ? AND locale = ''", [.text(language), .int(person.id)]) }
            person = try db.person(id: person.id) ?? person
        }
        return [try sendLink(to: person, language: language, by: "web", remoteAddr: remoteAddr, services: services, now: now).mailID]
    }

    /// Sets a new password from a link: checks the token, the policy, then in one transaction
    /// consumes the token, stores the hash (which ends sessions and voids other links), records
    /// the event and queues the "password changed" email. Never logs the person in.
    public static func resetPassword(token: String, password: String, confirmation: String, language: String? = nil,
                                     remoteAddr: String, services: Services, now: Int64) throws -> ResetOutcome {
        let tokens = ResetTokens(db: services.db, key: services.key)
        guard case let .valid(tokenID, personID) = try tokens.check(token, now: now),
              let person = try services.db.person(id: personID) else { return .expired }
        if let problem = try PasswordPolicy.problem(password: password, confirmation: confirmation, email: person.email,
                                                    name: person.name, config: services.config) {
            return .rejected(problem)
        }
        // Hash before BEGIN: the write lock is never held for the tens of milliseconds Argon2id takes.
        let hash = try PasswordHash.hash(password, parameters: services.config.password.argon2)
        return try services.db.write {
            guard try tokens.consume(tokenID: tokenID, now: now) else { return .expired }
            try services.db.setPassword(personID: personID, hash: hash, mustChange: false, now: now)
            try services.db.audit(AuditEvent(actor: "web", action: "password.reset", personID: personID, subject: person.email,
                                             remoteAddr: remoteAddr), now: now)
            let mailID = try services.mailer.queue(.passwordChanged, to: person, values: [:], language: language, by: "web", now: now)
            return .done(personID: personID, mailID: mailID)
        }
    }
}
