import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `user show`: a person's file (`PersonFile`, shared with the console) as text or JSON.
struct PersonRecord {
    let file: PersonFile
    let config: SiteConfig

    static func load(_ person: Person, services: Services, now: Int64) throws -> PersonRecord {
        PersonRecord(file: try PersonFile.load(person, services: services, now: now), config: services.config)
    }

    var person: Person { file.person }
    var link: ResetTokens.Link? { file.link }

    var text: String {
        var lines = ["\(person.email)\(person.name.isEmpty ? "" : "  (\(person.name))")"]
        func add(_ label: String, _ value: String) { lines.append("  " + label.padding(10) + value) }
        add("status", file.loginState)
        add("access", file.grants.isEmpty ? "none" : file.grants.map { g in
            g.slug + (g.revokedAt.map { " (revoked \(Clock.readable($0)))" } ?? " (since \(Clock.readable(g.grantedAt)) by \(g.grantedBy))")
        }.joined(separator: ", "))
        add("created", Clock.readable(person.createdAt))
        add("login", person.lastLoginAt.map { "last \(Clock.readable($0))" } ?? "never logged in")
        add("password", file.passwordState)
        add("sessions", file.sessions.isEmpty ? "none active" : "\(file.sessions.count) active, last seen \(Clock.readable(file.sessions[0].lastSeenAt))")
        if let link {
            add("reset", "Reset password email sent \(Clock.readable(link.createdAt)) by \(link.createdBy). Link, valid until \(Clock.readable(link.expiresAt)):")
            lines.append("            " + ResetTokens.url(token: link.token, config: config))
            lines.append("            (asking again before \(Clock.readable(link.reuseUntil)) re-sends this same link)")
        }
        if file.mail.isEmpty { add("email", "none sent") } else {
            add("email", "")
            lines.removeLast()
            lines.append("  email history (newest first):")
            lines += file.mail.map { "    " + MailCommands.line($0).replacingAll("\n", with: "\n    ") }
        }
        return lines.joined(separator: "\n")
    }

    var json: JSONOut {
        var object: [String: JSONOut] = [
            "email": .string(person.email), "name": .string(person.name), "kind": .string(person.kind),
            "disabled": .bool(person.disabledAt != nil), "status": .string(file.loginState), "password": .string(file.passwordState),
            "must_change_password": .bool(person.mustChangePassword), "created_at": .int(person.createdAt),
            "last_login_at": person.lastLoginAt.map { .int($0) } ?? .null, "active_sessions": .int(Int64(file.sessions.count)),
            "access": .array(file.grants.map { .object(["offer": .string($0.slug), "active": .bool($0.revokedAt == nil)]) }),
            "email_history": .array(file.mail.map(MailCommands.json)),
        ]
        object["reset"] = link.map { .object(["status": .string("Reset password email sent"), "sent_at": .int($0.createdAt),
                                              "sent_by": .string($0.createdBy), "link": .string(ResetTokens.url(token: $0.token, config: config)),
                                              "expires_at": .int($0.expiresAt), "reuse_until": .int($0.reuseUntil)]) } ?? .null
        return .object(object)
    }
}
