import LatchkeyCore

/// A member of the support staff: their own account, not a customer's.
public struct StaffMember: Sendable, Equatable {
    /// The roles, lowest first; each may do everything the ones before it may.
    public enum Role: String, Sendable, CaseIterable, Comparable {
        case viewer, support, manager, owner

        /// The role's rank: 0 for `viewer` up to 3 for `owner`.
        public var rank: Int { Role.allCases.firstIndex(of: self)! }

        /// Ranks compare as the roles' order.
        public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    }

    /// The database row id.
    public let id: Int64
    /// Their email address, lowercased.
    public let email: String
    /// Their display name; may be empty.
    public let name: String
    /// What they may do.
    public let role: Role
    /// The language they chose for the console; empty for the site's default.
    public let locale: String
    /// Their Argon2id password hash; nil until enrolment is complete.
    public let passwordHash: String?
    /// The TOTP secret, sealed with the site key; nil until enrolment is complete.
    public let sealedTOTPSecret: [UInt8]?
    /// The last TOTP step accepted, so no code works twice.
    public let totpLastStep: Int64
    /// When they completed enrolment.
    public let enrolledAt: Int64?
    /// When their console login was closed; nil while open.
    public let disabledAt: Int64?
    /// When they last logged in.
    public let lastLoginAt: Int64?
    /// When the account was made, and by whom.
    public let createdAt: Int64
    /// Who made the account (`staff:EMAIL` or the operator).
    public let createdBy: String

    /// The audit trail's name for them.
    public var actor: String { "staff:" + email }

    init(row: Row) {
        id = row.int("id") ?? 0
        email = row.text("email") ?? ""
        name = row.text("name") ?? ""
        role = Role(rawValue: row.text("role") ?? "") ?? .viewer
        locale = row.text("locale") ?? ""
        passwordHash = row.text("password_hash")
        sealedTOTPSecret = row.blob("sealed_totp_secret")
        totpLastStep = row.int("totp_last_step") ?? 0
        enrolledAt = row.int("enrolled_at")
        disabledAt = row.int("disabled_at")
        lastLoginAt = row.int("last_login_at")
        createdAt = row.int("created_at") ?? 0
        createdBy = row.text("created_by") ?? ""
    }
}

extension Database {
    /// The staff member with `email` (any case), or nil.
    public func staff(email: String) throws -> StaffMember? {
        try query("SELECT * FROM staff WHERE email = ?", [.text(Person.normalize(email))]).first.map(StaffMember.init)
    }

    /// The staff member with `id`, or nil.
    public func staff(id: Int64) throws -> StaffMember? {
        try query("SELECT * FROM staff WHERE id = ?", [.int(id)]).first.map(StaffMember.init)
    }

    /// Every staff member, by email.
    public func allStaff() throws -> [StaffMember] {
        try query("SELECT * FROM staff ORDER BY email").map(StaffMember.init)
    }

    /// Adds a staff member; fails if the address is taken. Call inside `write`.
    public func insertStaff(email: String, name: String, role: StaffMember.Role, by actor: String, now: Int64) throws -> StaffMember {
        try execute("INSERT INTO staff (email, name, role, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                    [.text(Person.normalize(email)), .text(name), .text(role.rawValue), .int(now), .text(actor)])
        return try staff(id: lastInsertID)!
    }

    /// Ends every console session of staff member `id`. Call inside `write`.
    public func endStaffSessions(staffID: Int64) throws {
        try execute("DELETE FROM staff_session WHERE staff_id = ?", [.int(staffID)])
    }
}
