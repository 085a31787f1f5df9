import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// A person's file as the record page's template values, laid out like a support tool's
/// profile: status line, access, sessions, last login and password change, email history, audit.
struct PersonView {
    let file: PersonFile
    let console: Console

    var values: [String: TemplateValue] {
        let person = file.person, t = console.table
        func text(_ key: String) -> String { t.string("admin.person." + key) ?? key }
        let status = !person.isCustomer ? text("status_contact") : person.disabledAt != nil ? text("status_disabled")
            : !file.hasAccess ? text("status_no_access") : person.mustChangePassword ? text("status_temporary") : text("status_ok")
        return [
            "id": .string(String(person.id)), "person_id": .string(String(person.id)), "email": .string(person.email), "name": .string(person.name),
            "kind": .string(t.string("admin.kind." + person.kind) ?? person.kind), "status": .string(status),
            "status_warning": .bool(person.disabledAt != nil || !person.isCustomer || !file.hasAccess),
            "created_at": Console.when(person.createdAt), "last_login": Console.when(person.lastLoginAt),
            "last_failed_login": Console.when(file.lastFailedLogin), "password_changed": Console.when(person.passwordChangedAt),
            "password_state": .string(person.passwordHash == nil ? text("password_never") : person.mustChangePassword ? text("password_temporary") : text("password_set")),
            "grants": .list(file.grants.map { grant in
                ["slug": .string(grant.slug), "name": .string(grant.name), "since": Console.when(grant.grantedAt), "by": .string(grant.grantedBy),
                 "revoked": Console.when(grant.revokedAt), "active": .bool(grant.revokedAt == nil)]
            }),
            "sessions": .list(file.sessions.map { session in
                ["since": Console.when(session.createdAt), "seen": Console.when(session.lastSeenAt), "from": .string(session.remoteAddr),
                 "agent": .string(String(session.userAgent.prefix(80)))]
            }),
            "mail": .list(file.mail.map { mail in
                ["id": .string(String(mail.id)), "when": Console.when(mail.sentAt ?? mail.createdAt), "kind": .string(mail.kind),
                 "subject": .string(mail.subject), "recipient": .string(mail.recipient), "status": .string(mail.status),
                 "failed": .bool(mail.status == "failed"), "error": .string(mail.lastError), "attempts": .string(String(mail.attempts))]
            }),
            "audit": .list(file.audit.map { entry in
                ["when": Console.when(entry.at), "actor": .string(entry.actor), "action": .string(entry.action),
                 "from": .string(entry.remoteAddr), "detail": .string(entry.detail)]
            }),
        ]
    }

    /// The buttons the staff member's role allows for this person (and only those); each leads
    /// to a confirmation step. A contact's record offers only "Grant access".
    static func actions(for person: Person, file: PersonFile, role: StaffMember.Role, console: Console) -> [TemplateValue] {
        var names: [String]
        if !person.isCustomer {
            names = ["grant", "delete"]
        } else {
            names = ["reset", "welcome", "set-password", "end-sessions", "set-email", "grant"]
            if file.hasAccess { names.append("revoke") }
            names.append(person.disabledAt == nil ? "disable" : "enable")
            names.append("delete")
        }
        return names.compactMap { name in
            guard let action = ConsoleAction.personActions[name], action.allowed(for: role) else { return nil }
            return ["href": .string(console.base + "/people/\(person.id)/" + name),
                    "label": .string(console.table.string("admin.actions." + action.localeKey) ?? name),
                    "danger": .bool(action.isDestructive)]
        }
    }
}
