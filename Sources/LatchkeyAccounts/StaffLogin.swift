import LatchkeyCore
import LatchkeyStore

/// The staff console's own login (OWASP ASVS 4.0.3 §2.8, §3): enrolment, password plus a second
/// factor, and step-up for the sensitive actions.
///
/// Every failed login takes one path whatever the reason (unknown address, not enrolled,
/// disabled, wrong password, wrong or reused code, throttled): one Argon2id verification, against
/// the stored dummy hash when there is no real one, one code check, and the same two throttle
/// counters; the audit trail records the true reason.
public enum StaffLogin {
    /// What an enrolment link's page shows.
    public struct EnrolmentPage: Sendable {
        /// Who is enrolling.
        public let staff: StaffMember
        /// The TOTP secret to be.
        public let secret: [UInt8]
        /// The ten recovery codes to be.
        public let recoveryCodes: [String]
    }

    /// What completing enrolment did.
    public enum EnrolOutcome: Equatable, Sendable {
        /// Enrolled; `cookie` is a fresh console session.
        case done(cookie: String)
        /// The link is expired, used or unknown.
        case expired
        /// The password breaks a rule (a `messages.*` key), or the code is not the authenticator's.
        case rejected(String)
    }

    /// The page of enrolment link `token`, or nil when it is expired, used or unknown. Never uses it up.
    public static func enrolmentPage(token: String, services: Services, now: Int64) throws -> EnrolmentPage? {
        guard let row = try enrolment(token, services: services, now: now), let staffID = row.int("staff_id"),
              let staff = try services.db.staff(id: staffID) else { return nil }
        let seal = services.key.subkey(.staffSeal)
        guard let secret = row.blob("sealed_secret").flatMap({ Sodium.open($0, key: seal) }),
              let codes = row.blob("sealed_codes").flatMap({ Sodium.open($0, key: seal) }) else { return nil }
        return EnrolmentPage(staff: staff, secret: secret,
                             recoveryCodes: String(decoding: codes, as: UTF8.self).split(separator: " ").map(String.init))
    }

    /// Completes enrolment: the password (customers' policy), and a first code from the
    /// authenticator proving it holds the secret. Stores the secret sealed and the codes hashed.
    public static func completeEnrolment(token: String, password: String, confirmation: String, code: String,
                                         remoteAddr: String, services: Services, now: Int64) throws -> EnrolOutcome {
        guard let page = try enrolmentPage(token: token, services: services, now: now) else { return .expired }
        if let problem = try PasswordPolicy.problem(password: password, confirmation: confirmation, email: page.staff.email,
                                                    name: page.staff.name, config: services.config) {
            return .rejected(problem)
        }
        guard let step = TOTP.verify(code, secret: page.secret, now: now, lastUsed: 0) else { return .rejected("code_refused") }
        let hash = try PasswordHash.hash(password, parameters: services.config.password.argon2)
        let db = services.db, key = services.key
        return try db.write {
            // The token is checked again inside the transaction: two tabs cannot both enrol.
            guard let row = try enrolment(token, services: services, now: now), let id = row.int("id") else { return .expired }
            try db.execute("UPDATE staff_enrolment SET used_at = ? WHERE id = ?", [.int(now), .int(id)])
            try db.execute("""
                UPDATE staff SET password_hash = ?, sealed_totp_secret = ?, totp_last_step = ?, enrolled_at = ?, last_login_at = ? WHERE id = ?
                """, [.text(hash), .blob(Sodium.seal(page.secret, key: key.subkey(.staffSeal))), .int(step), .int(now), .int(now), .int(page.staff.id)])
            try db.execute("DELETE FROM staff_recovery_code WHERE staff_id = ?", [.int(page.staff.id)])
            for code in page.recoveryCodes {
                try db.execute("INSERT INTO staff_recovery_code (staff_id, code_hash) VALUES (?, ?)",
                               [.int(page.staff.id), .blob(recoveryHash(code, services))])
            }
            try db.audit(AuditEvent(actor: page.staff.actor, action: "staff.enrolled", subject: page.staff.email, remoteAddr: remoteAddr), now: now)
            let cookie = try StaffSessions(db: db, key: key, config: services.config).start(staffID: page.staff.id, remoteAddr: remoteAddr, now: now)
            return .done(cookie: cookie)
        }
    }

    /// Logs in with `email`, `password` and `code` (a TOTP code or a recovery code); returns
    /// the console session's cookie, or nil for every kind of failure alike.
    public static func attempt(email rawEmail: String, password: String, code: String, remoteAddr: String,
                               services: Services, now: Int64) throws -> String? {
        let config = services.config, db = services.db
        let email = Person.normalize(rawEmail)
        let throttleKey = services.key.subkey(.throttleHash)
        let staff = try db.staff(email: email)
        let throttled = try db.throttleExceeded(scope: "staff:account", key: email, limit: config.admin.loginFailuresPerAccount, hashKey: throttleKey, now: now)
            || db.throttleExceeded(scope: "staff:ip", key: remoteAddr, limit: config.admin.loginFailuresPerIP, hashKey: throttleKey, now: now)
        let hash = try staff?.passwordHash ?? Login.dummyHash(services)
        let verified = PasswordHash.verify(password, against: hash) && staff?.passwordHash != nil
        let factor = try staff.map { try secondFactor($0, code: code, services: services, now: now) } ?? .wrong
        let reason: String? = throttled ? "throttled" : staff == nil ? "unknown address" : staff!.enrolledAt == nil ? "not enrolled"
            : staff!.disabledAt != nil ? "disabled" : !verified ? "wrong password" : factor == .wrong ? "wrong code" : nil
        guard reason == nil, let staff else {
            try db.write {
                _ = try db.throttleHit(scope: "staff:account", key: email, limit: config.admin.loginFailuresPerAccount, hashKey: throttleKey, now: now)
                _ = try db.throttleHit(scope: "staff:ip", key: remoteAddr, limit: config.admin.loginFailuresPerIP, hashKey: throttleKey, now: now)
                // Until the password and code are right the address is only a claim, not an actor.
                try db.audit(AuditEvent(actor: "web", action: "staff.login-failed", subject: email, remoteAddr: remoteAddr,
                                        detail: reason ?? ""), now: now)
            }
            return nil
        }
        return try db.write {
            guard try use(factor, of: staff, services: services, now: now) else { return nil }
            try db.execute("UPDATE staff SET last_login_at = ? WHERE id = ?", [.int(now), .int(staff.id)])
            try db.throttleClear(scope: "staff:account", key: email, hashKey: throttleKey)
            try db.audit(AuditEvent(actor: staff.actor, action: "staff.login", subject: staff.email, remoteAddr: remoteAddr,
                                    detail: factor.detail), now: now)
            return try StaffSessions(db: db, key: services.key, config: config).start(staffID: staff.id, remoteAddr: remoteAddr, now: now)
        }
    }

    /// Step-up: true when `session` gave a code within `admin.step_up_window`, or `code` is a
    /// good one now (which then counts for the window).
    public static func stepUp(_ session: StaffSessions.Live, code: String, services: Services, now: Int64) throws -> Bool {
        if now - session.stepUpAt < services.config.admin.stepUpWindow.seconds { return true }
        let factor = try secondFactor(session.staff, code: code, services: services, now: now)
        guard factor != .wrong else { return false }
        return try services.db.write {
            guard try use(factor, of: session.staff, services: services, now: now) else { return false }
            try StaffSessions(db: services.db, key: services.key, config: services.config).steppedUp(session, now: now)
            return true
        }
    }

    /// Which second factor `code` is for `staff`, not yet used.
    enum Factor: Equatable {
        case totp(Int64)
        case recovery(Int64)
        case wrong

        var detail: String { if case .recovery = self { return "with a recovery code" }; return "" }
    }

    static func secondFactor(_ staff: StaffMember, code: String, services: Services, now: Int64) throws -> Factor {
        let compact = code.filter { $0 != " " && $0 != "-" }.lowercased()
        if compact.count == TOTP.digits {
            guard let sealed = staff.sealedTOTPSecret, let secret = Sodium.open(sealed, key: services.key.subkey(.staffSeal)),
                  let step = TOTP.verify(compact, secret: secret, now: now, lastUsed: staff.totpLastStep) else { return .wrong }
            return .totp(step)
        }
        guard compact.count == 10,
              let id = try services.db.query("SELECT id FROM staff_recovery_code WHERE staff_id = ? AND code_hash = ? AND used_at IS NULL",
                                              [.int(staff.id), .blob(recoveryHash(compact, services))]).first?.int("id") else { return .wrong }
        return .recovery(id)
    }

    /// Marks `factor` used, once: a TOTP step only if it is still after the last one, a recovery
    /// code only if still unused (another request may have used it since). Call inside `write`.
    static func use(_ factor: Factor, of staff: StaffMember, services: Services, now: Int64) throws -> Bool {
        let db = services.db
        switch factor {
        case let .totp(step):
            try db.execute("UPDATE staff SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", [.int(step), .int(staff.id), .int(step)])
        case let .recovery(id):
            try db.execute("UPDATE staff_recovery_code SET used_at = ? WHERE id = ? AND used_at IS NULL", [.int(now), .int(id)])
        case .wrong:
            return false
        }
        return db.changes == 1
    }

    static func recoveryHash(_ code: String, _ services: Services) -> [UInt8] {
        let compact = code.filter { $0 != " " && $0 != "-" }.lowercased()
        return Sodium.keyedHash(Array(compact.utf8), key: services.key.subkey(.staffTokenHash))
    }

    static func enrolment(_ token: String, services: Services, now: Int64) throws -> Row? {
        guard token.utf8.count == 43, let bytes = Sodium.fromBase64URL(token, expectedCount: 32) else { return nil }
        let hash = Sodium.keyedHash(bytes, key: services.key.subkey(.staffTokenHash))
        return try services.db.query("SELECT * FROM staff_enrolment WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                                     [.blob(hash), .int(now)]).first
    }
}
