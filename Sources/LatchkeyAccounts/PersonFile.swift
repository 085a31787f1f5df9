import LatchkeyCore
import LatchkeyStore

/// Everything support staff see about one person: the command line's `user show` and the
/// console's record page both read it from here.
public struct PersonFile: Sendable {
    /// A grant of access to an offer.
    public struct Grant: Sendable {
        /// The offer's slug and name.
        public let slug: String, name: String
        /// When and by whom it was granted.
        public let grantedAt: Int64, grantedBy: String
        /// When it was revoked; nil while active.
        public let revokedAt: Int64?
    }

    /// A live session.
    public struct Session: Sendable {
        /// When it started and was last used.
        public let createdAt: Int64, lastSeenAt: Int64
        /// Where from, and with what browser.
        public let remoteAddr: String, userAgent: String
    }

    /// The person.
    public let person: Person
    /// Their grants, active and revoked, by offer.
    public let grants: [Grant]
    /// Their live sessions, most recent first.
    public let sessions: [Session]
    /// The live reset or welcome link, while inside the reuse window.
    public let link: ResetTokens.Link?
    /// The email history, newest first.
    public let mail: [MailRecord]
    /// When a login with their address last failed.
    public let lastFailedLogin: Int64?
    /// Their audit trail, newest first.
    public let audit: [AuditEntry]

    /// Reads `person`'s file; `mailLimit` and `auditLimit` bound the two histories.
    public static func load(_ person: Person, services: Services, now: Int64, mailLimit: Int = 20, auditLimit: Int = 50) throws -> PersonFile {
        let db = services.db
        let grants = try PersonFile.grants(of: person, db: db)
        let sessions = try db.query("""
            SELECT created_at, last_seen_at, remote_addr, user_agent FROM session
            WHERE person_id = ? AND expires_at > ? AND last_seen_at > ? ORDER BY last_seen_at DESC
            """, [.int(person.id), .int(now), .int(now - services.config.session.idleTimeout.seconds)]).map {
            Session(createdAt: $0.int("created_at") ?? 0, lastSeenAt: $0.int("last_seen_at") ?? 0,
                    remoteAddr: $0.text("remote_addr") ?? "", userAgent: $0.text("user_agent") ?? "")
        }
        return PersonFile(person: person, grants: grants, sessions: sessions,
                          link: try ResetTokens(db: db, key: services.key).current(personID: person.id, now: now),
                          mail: try db.mailHistory(personID: person.id, limit: mailLimit),
                          lastFailedLogin: try db.auditTrail(personID: person.id, action: "login.failed", limit: 1).first?.at,
                          audit: try db.auditTrail(personID: person.id, limit: auditLimit))
    }

    /// `person`'s grants, active and revoked, by offer slug.
    public static func grants(of person: Person, db: Database) throws -> [Grant] {
        try db.query("""
            SELECT o.slug, o.name, g.granted_at, g.granted_by, g.revoked_at FROM access_grant g JOIN offer o ON o.id = g.offer_id
            WHERE g.person_id = ? ORDER BY o.slug
            """, [.int(person.id)]).map {
            Grant(slug: $0.text("slug") ?? "", name: $0.text("name") ?? "", grantedAt: $0.int("granted_at") ?? 0,
                  grantedBy: $0.text("granted_by") ?? "", revokedAt: $0.int("revoked_at"))
        }
    }

    /// True while at least one grant is active.
    public var hasAccess: Bool { grants.contains { $0.revokedAt == nil } }

    /// One line on whether they can log in.
    public var loginState: String {
        if !person.isCustomer { return "contact (no login)" }
        if let closed = person.disabledAt { return "customer, login closed \(Clock.readable(closed))" }
        if !hasAccess { return "customer, no active access (account page only)" }
        return "customer, can log in"
    }

    /// One line on their password.
    public var passwordState: String {
        guard person.passwordHash != nil else { return "never set" }
        let when = person.passwordChangedAt.map { "changed \(Clock.readable($0))" } ?? "set"
        return person.mustChangePassword ? "temporary, must be changed at next login (\(when))" : when
    }
}
