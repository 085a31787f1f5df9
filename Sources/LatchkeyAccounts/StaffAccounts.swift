import LatchkeyCore
import LatchkeyMail
import LatchkeySite
import LatchkeyStore

/// Managing staff accounts: add, role, disable and enable, remove, and a new second factor for a
/// lost phone. The command line and the console's staff page both come here.
///
/// A new account (or one whose second factor was reset) gets an enrolment link, valid 24 hours:
/// its page shows the TOTP secret and ten recovery codes, and its POST sets the password and
/// proves the authenticator with a first code (`StaffLogin.completeEnrolment`).
public enum StaffAccounts {
    /// How long an enrolment link works.
    public static let enrolmentLifetime: Int64 = 24 * 3600
    /// Recovery codes made at enrolment.
    public static let recoveryCodeCount = 10

    /// Why a staff change cannot be made.
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case exists(String)
        /// Through the console nobody changes their own account, nor gives a role above their own.
        case ownAccount
        case aboveOwnRole

        /// A plain sentence.
        public var description: String {
            switch self {
            case let .exists(email): "\(email) is already on the staff"
            case .ownAccount: "nobody changes their own staff account through the console"
            case .aboveOwnRole: "nobody grants a role above their own"
            }
        }
    }

    /// An enrolment link.
    public struct Enrolment: Sendable {
        /// The address to open, with its one-time token.
        public let url: String
        /// When it stops working.
        public let expiresAt: Int64
        /// The queued email carrying it.
        public let mailID: Int64
    }

    /// Adds `email` to the staff with `role`, and emails (and returns) their enrolment link.
    public static func add(email: String, name: String, role: StaffMember.Role, by actor: Support.Actor,
                           services: Services, now: Int64) throws -> (StaffMember, Enrolment) {
        let db = services.db
        return try db.write {
            guard try db.staff(email: email) == nil else { throw Refusal.exists(Person.normalize(email)) }
            let member = try db.insertStaff(email: email, name: name, role: role, by: actor.name, now: now)
            try db.audit(AuditEvent(actor: actor.name, action: "staff.added", subject: member.email, remoteAddr: actor.remoteAddr,
                                    detail: role.rawValue), now: now)
            return (member, try issueEnrolment(member, by: actor, services: services, now: now))
        }
    }

    /// Changes `member`'s role; `actingAs` is the console user making the change (nil from the CLI).
    public static func setRole(_ member: StaffMember, _ role: StaffMember.Role, actingAs: StaffMember?, by actor: Support.Actor,
                               services: Services, now: Int64) throws {
        if let actingAs { try check(member, role: role, actingAs: actingAs) }
        let db = services.db
        try db.write {
            try db.execute("UPDATE staff SET role = ? WHERE id = ?", [.text(role.rawValue), .int(member.id)])
            try db.audit(AuditEvent(actor: actor.name, action: "staff.role", subject: member.email, remoteAddr: actor.remoteAddr,
                                    detail: "\(member.role.rawValue) → \(role.rawValue)"), now: now)
        }
    }

    /// Closes (`disabled`) or reopens `member`'s console login; closing ends their sessions.
    public static func setDisabled(_ member: StaffMember, _ disabled: Bool, actingAs: StaffMember?, by actor: Support.Actor,
                                   services: Services, now: Int64) throws {
        if let actingAs { try check(member, role: member.role, actingAs: actingAs) }
        let db = services.db
        try db.write {
            try db.execute("UPDATE staff SET disabled_at = ? WHERE id = ?", [disabled ? .int(now) : .null, .int(member.id)])
            if disabled { try db.endStaffSessions(staffID: member.id) }
            try db.audit(AuditEvent(actor: actor.name, action: disabled ? "staff.disabled" : "staff.enabled", subject: member.email,
                                    remoteAddr: actor.remoteAddr), now: now)
        }
    }

    /// Removes `member` from the staff, with their sessions and codes; the audit keeps their actions.
    public static func remove(_ member: StaffMember, actingAs: StaffMember?, by actor: Support.Actor, services: Services, now: Int64) throws {
        if let actingAs { try check(member, role: member.role, actingAs: actingAs) }
        let db = services.db
        try db.write {
            try db.execute("DELETE FROM staff WHERE id = ?", [.int(member.id)])
            try db.audit(AuditEvent(actor: actor.name, action: "staff.removed", subject: member.email, remoteAddr: actor.remoteAddr), now: now)
        }
    }

    /// A lost phone: voids the second factor and the recovery codes, ends the sessions, and
    /// issues (and emails) a new enrolment link, where a new password is chosen too.
    public static func resetSecondFactor(_ member: StaffMember, actingAs: StaffMember?, by actor: Support.Actor,
                                         services: Services, now: Int64) throws -> Enrolment {
        if let actingAs { try check(member, role: member.role, actingAs: actingAs) }
        let db = services.db
        return try db.write {
            try db.execute("UPDATE staff SET sealed_totp_secret = NULL, totp_last_step = 0, enrolled_at = NULL WHERE id = ?", [.int(member.id)])
            try db.execute("DELETE FROM staff_recovery_code WHERE staff_id = ?", [.int(member.id)])
            try db.endStaffSessions(staffID: member.id)
            try db.audit(AuditEvent(actor: actor.name, action: "staff.2fa-reset", subject: member.email, remoteAddr: actor.remoteAddr), now: now)
            return try issueEnrolment(member, by: actor, services: services, now: now)
        }
    }

    /// A new enrolment link for `member`, voiding older ones; its secret and codes are made now
    /// and sealed, so the page shows the same ones on every visit. Call inside `write`.
    static func issueEnrolment(_ member: StaffMember, by actor: Support.Actor, services: Services, now: Int64) throws -> Enrolment {
        let db = services.db, key = services.key
        let token = Sodium.randomBytes(32)
        let codes = (0..<recoveryCodeCount).map { _ in recoveryCode() }
        let seal = key.subkey(.staffSeal)
        try db.execute("DELETE FROM staff_enrolment WHERE staff_id = ?", [.int(member.id)])
        try db.execute("""
            INSERT INTO staff_enrolment (staff_id, token_hash, sealed_secret, sealed_codes, created_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?)
            """, [.int(member.id), .blob(Sodium.keyedHash(token, key: key.subkey(.staffTokenHash))),
                  .blob(Sodium.seal(Sodium.randomBytes(TOTP.secretBytes), key: seal)),
                  .blob(Sodium.seal(Array(codes.joined(separator: " ").utf8), key: seal)), .int(now), .int(now + enrolmentLifetime)])
        let url = services.config.absoluteURL(String(services.config.cgiPrefix.dropFirst()) + "admin/enrol?token=" + Sodium.base64URL(token))
        let recipient = MailRecipient(email: member.email, name: member.name, locale: member.locale)
        let table = try services.mailer.table(services.mailer.language(for: recipient))
        let mailID = try services.mailer.queue(.staffEnrolment, to: recipient, values: [
            "link": .string(url), "expires": .string(PageContext.words(for: TimeSpan(seconds: enrolmentLifetime), table: table)),
        ], by: actor.name, now: now)
        return Enrolment(url: url, expiresAt: now + enrolmentLifetime, mailID: mailID)
    }

    /// Ten characters of base32 (50 bits), shown as `xxxxx-xxxxx`.
    static func recoveryCode() -> String {
        let text = Base32.encode(Sodium.randomBytes(7)).lowercased().prefix(10)
        return String(text.prefix(5)) + "-" + String(text.suffix(5))
    }

    /// The console's rules for acting on a staff account: never one's own, never above one's role.
    static func check(_ member: StaffMember, role: StaffMember.Role, actingAs: StaffMember) throws {
        guard member.id != actingAs.id else { throw Refusal.ownAccount }
        guard role <= actingAs.role, member.role <= actingAs.role else { throw Refusal.aboveOwnRole }
    }
}
