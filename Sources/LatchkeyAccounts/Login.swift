import LatchkeyCore
import LatchkeyStore

/// Logging in and changing a password while logged in.
///
/// Every failed login takes the same path whatever the reason (unknown address, contact,
/// disabled, wrong password, throttled): one Argon2id verification, against a stored dummy hash
/// when there is no real one, and the same two throttle counters. The page says only "email and
/// password don't match"; the audit trail records the true reason.
///
/// A right password with no active access is not a failure: the person did nothing wrong, and
/// only the password's owner can see the difference. They get a session that opens the account
/// page only (the members area and `session` stay closed), and a page that says how to get access.
public enum Login {
    /// What a login attempt did.
    public enum Outcome: Equatable, Sendable {
        /// A session was started; `cookie` is its id. `mustChange` when the password is temporary;
        /// `hasAccess` false when the person holds no active access (the account page only).
        case success(cookie: String, mustChange: Bool, hasAccess: Bool)
        case failure
    }

    /// Checks `email` and `password` and starts a session when they are right and the person
    /// may log in.
    public static func attempt(email rawEmail: String, password: String, remoteAddr: String, userAgent: String,
                               services: Services, now: Int64) throws -> Outcome {
        let config = services.config, db = services.db
        let email = Person.normalize(rawEmail)
        let throttleKey = services.key.subkey(.throttleHash)
        let person = try db.person(email: email)
        let throttled = try db.throttleExceeded(scope: "login:account", key: email, limit: config.throttle.loginFailuresPerAccount, hashKey: throttleKey, now: now)
            || db.throttleExceeded(scope: "login:ip", key: remoteAddr, limit: config.throttle.loginFailuresPerIP, hashKey: throttleKey, now: now)
        let hash = try person?.passwordHash ?? dummyHash(services)
        let verified = PasswordHash.verify(password, against: hash) && person?.passwordHash != nil
        let hasAccess = try person.map { try db.hasActiveAccess(personID: $0.id) } ?? false
        let reason: String? = throttled ? "throttled" : person == nil ? "unknown address"
            : !person!.isCustomer ? "contact, not a customer" : person!.disabledAt != nil ? "disabled"
            : !verified ? "wrong password" : nil
        guard reason == nil, let person else {
            try db.write {
                _ = try db.throttleHit(scope: "login:account", key: email, limit: config.throttle.loginFailuresPerAccount, hashKey: throttleKey, now: now)
                _ = try db.throttleHit(scope: "login:ip", key: remoteAddr, limit: config.throttle.loginFailuresPerIP, hashKey: throttleKey, now: now)
                try db.audit(AuditEvent(actor: "web", action: "login.failed", personID: person?.id, subject: person?.email ?? "",
                                        remoteAddr: remoteAddr, detail: reason ?? ""), now: now)
            }
            return .failure
        }
        // Parameters have risen since this hash was made: upgrade it now that we know the password.
        let upgraded = PasswordHash.needsRehash(hash, parameters: config.password.argon2)
            ? try PasswordHash.hash(password, parameters: config.password.argon2) : nil
        let cookie: String = try db.write {
            if let upgraded {
                try db.execute("UPDATE person SET password_hash = ? WHERE id = ? AND password_hash = ?", [.text(upgraded), .int(person.id), .text(hash)])
            }
            try db.execute("UPDATE person SET last_login_at = ? WHERE id = ?", [.int(now), .int(person.id)])
            try db.throttleClear(scope: "login:account", key: email, hashKey: throttleKey)
            let notes = [hasAccess ? nil : "no active access: account page only", upgraded == nil ? nil : "password hash upgraded"]
            try db.audit(AuditEvent(actor: "web", action: "login.ok", personID: person.id, subject: person.email, remoteAddr: remoteAddr,
                                    detail: notes.compactMap { $0 }.joined(separator: "; ")), now: now)
            return try Sessions(db: db, key: services.key, config: config).start(personID: person.id, remoteAddr: remoteAddr, userAgent: userAgent, now: now)
        }
        return .success(cookie: cookie, mustChange: person.mustChangePassword, hasAccess: hasAccess)
    }

    /// A hash of a random password at the configured cost, made once and kept, so verifying
    /// against it costs what verifying a real one does.
    static func dummyHash(_ services: Services) throws -> String {
        let parameters = services.config.password.argon2
        if let stored = try services.db.setting("dummy_password_hash"), !PasswordHash.needsRehash(stored, parameters: parameters) {
            return stored
        }
        let made = try PasswordHash.hash(Sodium.base64URL(Sodium.randomBytes(24)), parameters: parameters)
        try services.db.write { try services.db.setSetting("dummy_password_hash", made) }
        return made
    }

    /// What changing a password from the account page did.
    public enum ChangeOutcome: Equatable, Sendable {
        /// Changed; every session ended and `cookie` is the caller's fresh one; mail queued as `mailID`.
        case done(cookie: String, mailID: Int64)
        case wrongCurrent
        case rejected(String)
    }

    /// Changes the password of the person logged in with `session`: needs the current password,
    /// applies the policy, then voids every link, ends every session (the caller gets a fresh
    /// one), clears the temporary-password flag, and queues the "password changed" email.
    public static func changePassword(session: Sessions.Live, current: String, new: String, confirmation: String,
                                      remoteAddr: String, userAgent: String, services: Services, now: Int64) throws -> ChangeOutcome {
        let config = services.config, db = services.db
        let person = session.person
        guard try checkCurrentPassword(person, current, failure: "password.change-failed", remoteAddr: remoteAddr, services: services, now: now) else {
            return .wrongCurrent
        }
        if let problem = try PasswordPolicy.problem(password: new, confirmation: confirmation, email: person.email, name: person.name, config: config) {
            return .rejected(problem)
        }
        let newHash = try PasswordHash.hash(new, parameters: config.password.argon2)
        return try db.write {
            try db.setPassword(personID: person.id, hash: newHash, mustChange: false, now: now)
            try db.audit(AuditEvent(actor: "web", action: "password.changed", personID: person.id, subject: person.email, remoteAddr: remoteAddr), now: now)
            let mailID = try services.mailer.queue(.passwordChanged, to: person, values: [:], by: "web", now: now)
            let cookie = try Sessions(db: db, key: services.key, config: config).start(personID: person.id, remoteAddr: remoteAddr, userAgent: userAgent, now: now)
            return .done(cookie: cookie, mailID: mailID)
        }
    }

    /// True when `password` is `person`'s current one. A wrong one counts against the same
    /// per-account limit as failed logins (so these forms cannot be used to guess it) and is
    /// audited as `failure`.
    public static func checkCurrentPassword(_ person: Person, _ password: String, failure: String, remoteAddr: String,
                                            services: Services, now: Int64) throws -> Bool {
        let config = services.config, db = services.db
        let throttleKey = services.key.subkey(.throttleHash)
        let throttled = try db.throttleExceeded(scope: "login:account", key: person.email, limit: config.throttle.loginFailuresPerAccount, hashKey: throttleKey, now: now)
        if !throttled, let hash = person.passwordHash, PasswordHash.verify(password, against: hash) { return true }
        try db.write {
            _ = try db.throttleHit(scope: "login:account", key: person.email, limit: config.throttle.loginFailuresPerAccount, hashKey: throttleKey, now: now)
            try db.audit(AuditEvent(actor: "web", action: failure, personID: person.id, subject: person.email,
                                    remoteAddr: remoteAddr, detail: throttled ? "throttled" : "wrong current password"), now: now)
        }
        return false
    }
}
