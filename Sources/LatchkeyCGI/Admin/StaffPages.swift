import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// The owner's staff page: the accounts, adding one, and changing one (never one's own).
enum StaffPages {
    static func list(_ console: Console) throws -> Reply {
        try console.require(.staff)
        let me = try console.staff()
        let query = try console.context.request.query()
        let roles = StaffMember.Role.allCases.map { $0.rawValue }
        let members = try console.services.db.allStaff().map { member -> TemplateValue in
            ["id": .string(String(member.id)), "email": .string(member.email), "name": .string(member.name), "role": .string(member.role.rawValue),
             "enrolled": .bool(member.enrolledAt != nil), "disabled": .bool(member.disabledAt != nil),
             "last_login": Console.when(member.lastLoginAt), "is_me": .bool(member.id == me.id),
             "roles": .list(roles.map { ["name": .string($0), "selected": .bool($0 == member.role.rawValue)] })]
        }
        return try console.page("staff", ["members": .list(members), "roles": .list(roles.map { .string($0) }),
                                          "step_up": .bool(console.stepUpDue), "message": console.message(query)])
    }

    static func add(_ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        try console.require(.staff)
        guard try console.steppedUp(.staff, form) else { return console.redirect("/staff", message: "step_up_refused") }
        let email = Person.normalize(form["email"] ?? "")
        guard Person.isPlausibleEmail(email), let role = StaffMember.Role(rawValue: form["role"] ?? "") else {
            return console.redirect("/staff", message: "invalid_email")
        }
        guard role <= (try console.staff().role) else { throw HTTPError(403, "nobody grants a role above their own") }
        do {
            let (_, enrolment) = try StaffAccounts.add(email: email, name: (form["name"] ?? "").trimmed, role: role, by: console.actor,
                                                       services: console.services, now: console.now)
            return Reply(console.redirect("/staff", message: "staff_added").response, after: .deliver([enrolment.mailID]))
        } catch is StaffAccounts.Refusal {
            return console.redirect("/staff", message: "exists_refused")
        }
    }

    /// The staff actions that are a button after a confirmation step.
    static let confirmed = ["disable", "enable", "reset-2fa", "remove"]

    static func confirm(_ name: String, _ idText: String, _ console: Console) throws -> Reply {
        try console.require(.staff)
        guard confirmed.contains(name), let id = Int64(idText), let member = try console.services.db.staff(id: id) else {
            throw HTTPError(404, "no staff page \(name.prefix(20))")
        }
        let key = name.replacingAll("-", with: "_")
        func text(_ suffix: String) -> TemplateValue { .string(console.table.string("admin.staff_page.\(key)_\(suffix)") ?? key) }
        return try console.page("staff-confirm", ["member": .string(member.email), "title": text("title"), "explain": text("explain"),
                                                  "submit": text("submit"), "action": .string(console.base + "/staff/\(member.id)/" + name),
                                                  "step_up": .bool(console.stepUpDue)])
    }

    static func perform(_ name: String, _ idText: String, _ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        try console.require(.staff)
        guard let id = Int64(idText), let member = try console.services.db.staff(id: id) else { throw HTTPError(404, "no staff member \(idText.prefix(20))") }
        guard try console.steppedUp(.staff, form) else { return console.redirect("/staff", message: "step_up_refused") }
        let me = try console.staff()
        do {
            switch name {
            case "role":
                guard let role = StaffMember.Role(rawValue: form["role"] ?? "") else { throw HTTPError(400, "no such role") }
                try StaffAccounts.setRole(member, role, actingAs: me, by: console.actor, services: console.services, now: console.now)
            case "disable", "enable":
                try StaffAccounts.setDisabled(member, name == "disable", actingAs: me, by: console.actor, services: console.services, now: console.now)
            case "remove":
                try StaffAccounts.remove(member, actingAs: me, by: console.actor, services: console.services, now: console.now)
            case "reset-2fa":
                let enrolment = try StaffAccounts.resetSecondFactor(member, actingAs: me, by: console.actor, services: console.services, now: console.now)
                return Reply(console.redirect("/staff", message: "staff_2fa_reset").response, after: .deliver([enrolment.mailID]))
            default:
                throw HTTPError(404, "no staff action \(name.prefix(20))")
            }
        } catch let refusal as StaffAccounts.Refusal {
            throw HTTPError(403, refusal.description)
        }
        return console.redirect("/staff", message: "staff_changed")
    }
}
