import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// What a logged-in customer changes on their own account page (SPEC §10): their name and
/// language, their address (confirmed from the new one), and which devices stay logged in.
public enum AccountSettings {
    /// One of their live sessions, as the page lists it.
    public struct Device: Sendable {
        /// "Firefox", "Windows": empty when the browser does not say.
        public let browser: String, system: String
        /// Where from, and when last used.
        public let remoteAddr: String, lastSeenAt: Int64
        /// True for the session that is looking.
        public let isThisOne: Bool
    }

    /// Why an address change cannot be asked for; the account page words each.
    public enum EmailRefusal: String, Error, Sendable {
        /// The current password was wrong (or too many were).
        case wrongCurrent = "wrong_current"
        /// Not an address.
        case invalid = "email_invalid"
        /// Someone else has it (said only to a customer who proved their password).
        case taken = "email_taken"
        /// It is already theirs.
        case same = "email_same"
        /// Too many requests (`throttle.forgot_per_address`, per person).
        case throttled = "email_throttled"
    }

    /// How long a confirmation link works.
    public static let linkLifetime: Int64 = 24 * 3600

    /// `live`'s person's sessions that have not ended, most recent first.
    public static func devices(of live: Sessions.Live, services: Services, now: Int64) throws -> [Device] {
        try services.db.query("""
            SELECT id, user_agent, remote_addr, last_seen_at FROM session
            WHERE person_id = ? AND expires_at > ? AND last_seen_at > ? ORDER BY id = ? DESC, last_seen_at DESC
            """, [.int(live.person.id), .int(now), .int(now - services.config.session.idleTimeout.seconds), .int(live.sessionID)]).map {
            let agent = UserAgent.describe($0.text("user_agent") ?? "")
            return Device(browser: agent.browser, system: agent.system, remoteAddr: $0.text("remote_addr") ?? "",
                          lastSeenAt: $0.int("last_seen_at") ?? 0, isThisOne: $0.int("id") == live.sessionID)
        }
    }

    /// Changes their name and the language their emails come in; a field not given stays.
    public static func updateProfile(_ person: Person, name: String?, locale: String?, remoteAddr: String, services: Services, now: Int64) throws {
        let fields = Support.Fields(name: name?.trimmed, locale: locale)
        try Support.check(fields, config: services.config)
        _ = try services.db.write { try Support.update(person, fields, by: Support.Actor("web", remoteAddr: remoteAddr), db: services.db, now: now) }
    }

    /// "Sign out other devices": ends every session of theirs but `live`; returns how many.
    @discardableResult
    public static func endOtherSessions(_ live: Sessions.Live, remoteAddr: String, services: Services, now: Int64) throws -> Int {
        let db = services.db
        return try db.write {
            try db.execute("DELETE FROM session WHERE person_id = ? AND id != ?", [.int(live.person.id), .int(live.sessionID)])
            let ended = db.changes
            try db.audit(AuditEvent(actor: "web", action: "sessions.ended", personID: live.person.id, subject: live.person.email,
                                    remoteAddr: remoteAddr, detail: "\(ended) other devices signed out by the customer"), now: now)
            return ended
        }
    }

    /// Asks to move `person` to `newEmail`: with their current password, emails a link to the
    /// new address (the old one stays until it is followed). Returns the queued mail's id.
    public static func requestEmailChange(_ person: Person, to newEmail: String, currentPassword: String, remoteAddr: String,
                                          services: Services, now: Int64) throws -> Int64 {
        let address = Person.normalize(newEmail)
        guard Person.isPlausibleEmail(address) else { throw EmailRefusal.invalid }
        // Every request counts, right password or not: each one mails a stranger's address.
        let limited = try services.db.write {
            try !services.db.throttleHit(scope: "email-change", key: String(person.id), limit: services.config.throttle.forgotPerAddress,
                                         hashKey: services.key.subkey(.throttleHash), now: now)
        }
        guard !limited else { throw EmailRefusal.throttled }
        guard try Login.checkCurrentPassword(person, currentPassword, failure: "email.change-failed", remoteAddr: remoteAddr,
                                             services: services, now: now) else { throw EmailRefusal.wrongCurrent }
        guard address != person.email else { throw EmailRefusal.same }
        let db = services.db
        guard try db.person(email: address) == nil else { throw EmailRefusal.taken }
        let token = Sodium.base64URL(Sodium.randomBytes(32))
        return try db.write {
            // A newer request replaces an older one: only the latest link works.
            try db.execute("UPDATE email_change SET used_at = ? WHERE person_id = ? AND used_at IS NULL", [.int(now), .int(person.id)])
            try db.execute("INSERT INTO email_change (person_id, new_email, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           [.int(person.id), .text(address), .blob(hash(token, services)), .int(now), .int(now + linkLifetime)])
            try db.audit(AuditEvent(actor: "web", action: "email.change-requested", personID: person.id, subject: person.email,
                                    remoteAddr: remoteAddr, detail: "to \(address)"), now: now)
            let link = services.config.origin + services.config.cgiPrefix + "confirm-email?token=" + token
            return try services.mailer.queue(.confirmEmail, to: person, recipient: address,
                                             values: ["link": .string(link), "new_email": .string(address)], by: "web", now: now)
        }
    }

    /// The person and new address a live confirmation link stands for; nil when it is unknown,
    /// used, replaced or expired. Reading never uses it up.
    public static func pendingChange(token: String, services: Services, now: Int64) throws -> (person: Person, newEmail: String)? {
        guard token.utf8.count == 43, Sodium.fromBase64URL(token, expectedCount: 32) != nil,
              let row = try services.db.query("""
                SELECT person_id, new_email FROM email_change WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
                """, [.blob(hash(token, services)), .int(now)]).first,
              let person = try services.db.person(id: row.int("person_id") ?? 0), person.disabledAt == nil, person.isCustomer else { return nil }
        return (person, row.text("new_email") ?? "")
    }

    /// Follows a confirmation link: the address changes, links are voided, every session ends,
    /// and the old address is told. Returns the new address and the notice's mail id; nil when
    /// the link no longer works (or someone took the address meanwhile).
    /// `session`, when it is theirs, stays logged in; every other one ends.
    public static func confirmEmailChange(token: String, session: Sessions.Live?, remoteAddr: String, services: Services,
                                          now: Int64) throws -> (email: String, mailID: Int64)? {
        guard let pending = try pendingChange(token: token, services: services, now: now) else { return nil }
        let db = services.db
        return try db.write {
            try db.execute("UPDATE email_change SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", [.int(now), .blob(hash(token, services))])
            guard db.changes == 1, try db.person(email: pending.newEmail) == nil else { return nil }
            let keep = session.flatMap { $0.person.id == pending.person.id ? $0.sessionID : nil }
            let mailID = try People.changeEmail(pending.person, to: pending.newEmail, by: "web", remoteAddr: remoteAddr, keeping: keep,
                                                services: services, now: now)
            return (pending.newEmail, mailID)
        }
    }

    static func hash(_ token: String, _ services: Services) -> [UInt8] {
        Sodium.keyedHash(Array(token.utf8), key: services.key.subkey(.emailChangeHash))
    }
}
