import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// Everything support staff want to see about one person, for `user show`.
struct PersonRecord {
    let person: Person
    let grants: [Row]
    let sessions: [Row]
    let link: ResetTokens.Link?
    let mail: [MailRecord]
    let config: SiteConfig

    static func load(_ person: Person, services: Services, now: Int64) throws -> PersonRecord {
        let db = services.db
        return PersonRecord(
            person: person,
            grants: try db.query("""
                SELECT o.slug, g.granted_at, g.granted_by, g.revoked_at FROM access_grant g JOIN offer o ON o.id = g.offer_id
                WHERE g.person_id = ? ORDER BY o.slug
                """, [.int(person.id)]),
            sessions: try db.query("SELECT created_at, last_seen_at, remote_addr FROM session WHERE person_id = ? AND expires_at > ? AND last_seen_at > ? ORDER BY last_seen_at DESC",
                                   [.int(person.id), .int(now), .int(now - services.config.session.idleTimeout.seconds)]),
            link: try ResetTokens(db: db, key: services.key).current(personID: person.id, now: now),
            mail: try db.mailHistory(personID: person.id, limit: 20),
            config: services.config)
    }

    var loginState: String {
        if !person.isCustomer { return "contact (no login)" }
        if person.disabledAt != nil { return "customer, login closed \(Clock.readable(person.disabledAt!))" }
        if grants.allSatisfy({ $0.int("revoked_at") != nil }) { return "customer, no active access (cannot log in)" }
        return "customer, can log in"
    }

    var passwordState: String {
        guard person.passwordHash != nil else { return "never set" }
        let when = person.passwordChangedAt.map { "changed \(Clock.readable($0))" } ?? "set"
        return person.mustChangePassword ? "temporary, must be changed at next login (\(when))" : when
    }

    var text: String {
        var lines = ["\(person.email)\(person.name.isEmpty ? "" : "  (\(person.name))")"]
        func add(_ label: String, _ value: String) { lines.append("  " + label.padding(10) + value) }
        add("status", loginState)
        add("access", grants.isEmpty ? "none" : grants.map { g in
            "\(g.text("slug") ?? "")" + (g.int("revoked_at").map { " (revoked \(Clock.readable($0)))" } ?? " (since \(Clock.readable(g.int("granted_at") ?? 0)) by \(g.text("granted_by") ?? ""))")
        }.joined(separator: ", "))
        add("created", Clock.readable(person.createdAt))
        add("login", person.lastLoginAt.map { "last \(Clock.readable($0))" } ?? "never logged in")
        add("password", passwordState)
        add("sessions", sessions.isEmpty ? "none active" : "\(sessions.count) active, last seen \(Clock.readable(sessions[0].int("last_seen_at") ?? 0))")
        if let link {
            add("reset", "Reset password email sent \(Clock.readable(link.createdAt)) by \(link.createdBy). Link, valid until \(Clock.readable(link.expiresAt)):")
            lines.append("            " + ResetTokens.url(token: link.token, config: config))
            lines.append("            (asking again before \(Clock.readable(link.reuseUntil)) re-sends this same link)")
        }
        if mail.isEmpty { add("email", "none sent") } else {
            add("email", "")
            lines.removeLast()
            lines.append("  email history (newest first):")
            lines += mail.map { "    " + MailCommands.line($0).replacingAll("\n", with: "\n    ") }
        }
        return lines.joined(separator: "\n")
    }

    var json: JSONOut {
        var object: [String: JSONOut] = [
            "email": .string(person.email), "name": .string(person.name), "kind": .string(person.kind),
            "disabled": .bool(person.disabledAt != nil), "status": .string(loginState), "password": .string(passwordState),
            "must_change_password": .bool(person.mustChangePassword), "created_at": .int(person.createdAt),
            "last_login_at": person.lastLoginAt.map { .int($0) } ?? .null, "active_sessions": .int(Int64(sessions.count)),
            "access": .array(grants.map { .object(["offer": .string($0.text("slug") ?? ""), "active": .bool($0.int("revoked_at") == nil)]) }),
            "email_history": .array(mail.map(MailCommands.json)),
        ]
        object["reset"] = link.map { .object(["status": .string("Reset password email sent"), "sent_at": .int($0.createdAt),
                                              "sent_by": .string($0.createdBy), "link": .string(ResetTokens.url(token: $0.token, config: config)),
                                              "expires_at": .int($0.expiresAt), "reuse_until": .int($0.reuseUntil)]) } ?? .null
        return .object(object)
    }
}
