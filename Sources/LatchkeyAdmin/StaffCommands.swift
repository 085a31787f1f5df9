import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `staff add|list|role|disable|enable|remove|reset-2fa`: the console's accounts, from the shell
/// (where the first owner is made).
enum StaffCommands {
    static func add(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["role", "name"])
        let email = try UserCommands.validEmail(try invocation.word(0, "EMAIL"))
        let name = try UserCommands.validName(invocation.arguments.options["name"])
        let role = try self.role(invocation.arguments.options["role"] ?? "")
        let services = try invocation.services()
        let (member, enrolment) = try worded {
            try StaffAccounts.add(email: email, name: name, role: role, by: invocation.actor, services: services, now: Clock.now())
        }
        Console.out("Staff account added: \(member.email) (\(member.role.rawValue)). Enrolment link, valid until \(Clock.readable(enrolment.expiresAt)):")
        Console.out(enrolment.url)
        try UserCommands.deliverNow(enrolment.mailID, services)
    }

    static func list(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["json"])
        let staff = try invocation.services().db.allStaff()
        if invocation.arguments.flags.contains("json") {
            Console.out(JSONOut.array(staff.map { member in
                .object(["email": .string(member.email), "name": .string(member.name), "role": .string(member.role.rawValue),
                         "enrolled": .bool(member.enrolledAt != nil), "disabled": .bool(member.disabledAt != nil),
                         "last_login_at": member.lastLoginAt.map { .int($0) } ?? .null])
            }).text)
            return
        }
        if staff.isEmpty { Console.out("No staff yet: latchkey staff add EMAIL --role owner"); return }
        for member in staff {
            let state = member.disabledAt != nil ? "disabled" : member.enrolledAt == nil ? "not enrolled yet" : "enrolled"
            Console.out("\(member.email)\t\(member.role.rawValue)\t\(state)\t\(member.lastLoginAt.map { "last login \(Clock.readable($0))" } ?? "never logged in")")
        }
    }

    static func setRole(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let member = try staffMember(try invocation.word(0, "EMAIL"), services)
        let role = try self.role(try invocation.word(1, "ROLE"))
        try StaffAccounts.setRole(member, role, actingAs: nil, by: invocation.actor, services: services, now: Clock.now())
        Console.out("Role changed: \(member.email) \(member.role.rawValue) → \(role.rawValue).")
    }

    static func disable(_ invocation: Invocation) throws { try setDisabled(invocation, true) }
    static func enable(_ invocation: Invocation) throws { try setDisabled(invocation, false) }

    static func setDisabled(_ invocation: Invocation, _ disabled: Bool) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let member = try staffMember(try invocation.word(0, "EMAIL"), services)
        try StaffAccounts.setDisabled(member, disabled, actingAs: nil, by: invocation.actor, services: services, now: Clock.now())
        Console.out(disabled ? "Console login closed for \(member.email); their sessions ended." : "Console login reopened for \(member.email).")
    }

    static func remove(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["yes"])
        let services = try invocation.services()
        let member = try staffMember(try invocation.word(0, "EMAIL"), services)
        guard invocation.arguments.flags.contains("yes") else {
            throw CommandError("this removes \(member.email) from the staff (the audit trail keeps what they did); add --yes to do it")
        }
        try StaffAccounts.remove(member, actingAs: nil, by: invocation.actor, services: services, now: Clock.now())
        Console.out("Removed \(member.email) from the staff.")
    }

    static func resetSecondFactor(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let services = try invocation.services()
        let member = try staffMember(try invocation.word(0, "EMAIL"), services)
        let enrolment = try StaffAccounts.resetSecondFactor(member, actingAs: nil, by: invocation.actor, services: services, now: Clock.now())
        Console.out("Second factor and recovery codes voided for \(member.email); their sessions ended. New enrolment link, valid until \(Clock.readable(enrolment.expiresAt)):")
        Console.out(enrolment.url)
        try UserCommands.deliverNow(enrolment.mailID, services)
    }

    static func role(_ text: String) throws -> StaffMember.Role {
        guard let role = StaffMember.Role(rawValue: text) else {
            throw CommandError("--role must be one of \(StaffMember.Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return role
    }

    static func staffMember(_ email: String, _ services: Services) throws -> StaffMember {
        guard let member = try services.db.staff(email: email) else {
            throw CommandError("no staff member with the address \(Person.normalize(email)) (see latchkey staff list)")
        }
        return member
    }

    static func worded<T>(_ action: () throws -> T) throws -> T {
        do { return try action() } catch let refusal as StaffAccounts.Refusal { throw CommandError(refusal.description) }
    }
}
