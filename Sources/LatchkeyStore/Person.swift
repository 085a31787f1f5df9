import LatchkeyCore

/// A person on file: a contact (no login) or a customer.
public struct Person: Sendable, Equatable {
    /// The database row id.
    public let id: Int64
    /// Their email address, lowercased.
    public let email: String
    /// Their display name; may be empty.
    public let name: String
    /// Language for their emails; empty means the site's default.
    public let locale: String
    /// `contact` or `customer`.
    public let kind: String
    /// When their account was disabled, in Unix seconds; nil while enabled.
    public let disabledAt: Int64?
    /// Their Argon2id password hash; nil when no password has been set.
    public let passwordHash: String?
    /// True when the password is temporary and must be changed at next login.
    public let mustChangePassword: Bool
    /// When the password was last set, in Unix seconds.
    public let passwordChangedAt: Int64?
    /// When they last logged in, in Unix seconds.
    public let lastLoginAt: Int64?
    /// When they were added, in Unix seconds.
    public let createdAt: Int64
    /// The id another system knows them by; nil when none was given.
    public let externalID: String?

    /// True for a customer: someone who may have a login.
    public var isCustomer: Bool { kind == "customer" }

    /// A person from a `person` row (every column, e.g. `SELECT *`).
    public init(row: Row) {
        id = row.int("id") ?? 0
        email = row.text("email") ?? ""
        name = row.text("name") ?? ""
        locale = row.text("locale") ?? ""
        kind = row.text("kind") ?? "contact"
        disabledAt = row.int("disabled_at")
        passwordHash = row.text("password_hash")
        mustChangePassword = row.int("must_change_password") == 1
        passwordChangedAt = row.int("password_changed_at")
        lastLoginAt = row.int("last_login_at")
        createdAt = row.int("created_at") ?? 0
        externalID = row.text("external_id")
    }

    /// Email addresses are compared lowercased and trimmed.
    public static func normalize(_ email: String) -> String { email.trimmed.lowercased() }

    /// A plausible address: one `@`, something on both sides, a dot in the domain, no spaces or
    /// control characters, at most 254 bytes (RFC 5321's path limit).
    public static func isPlausibleEmail(_ email: String) -> Bool {
        guard email.utf8.count <= 254, !email.hasControlCharacters, !email.includes(" ") else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let domain = parts[1]
        return domain.includes(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.includes("..")
            && !parts[0].includes("<") && !domain.includes("<") && !domain.includes(">") && !parts[0].includes(">")
            && !email.includes(",") && !email.includes(";") && !email.includes("\"")
    }
}

extension Database {
    /// The person with `email` (any case), or nil.
    public func person(email: String) throws -> Person? {
        try query("SELECT * FROM person WHERE email = ?", [.text(Person.normalize(email))]).first.map(Person.init)
    }

    /// The person with `id`, or nil.
    public func person(id: Int64) throws -> Person? {
        try query("SELECT * FROM person WHERE id = ?", [.int(id)]).first.map(Person.init)
    }

    /// Adds a person; fails if the address is taken. Ids are never reused: one above both the
    /// highest on file and the highest ever erased (a late `person.deleted` must never name
    /// someone new, and the audit trail of an erased id must not become another's).
    public func insertPerson(email: String, name: String, kind: String, locale: String = "", externalID: String? = nil, now: Int64) throws -> Person {
        try execute("""
            INSERT INTO person (id, email, name, locale, kind, external_id, created_at, updated_at) VALUES (
              max(coalesce((SELECT max(id) FROM person), 0), coalesce((SELECT CAST(value AS INTEGER) FROM setting WHERE name = 'person.erased_max_id'), 0)) + 1,
              ?, ?, ?, ?, ?, ?, ?)
            """, [.text(Person.normalize(email)), .text(name), .text(locale), .text(kind), externalID.map { .text($0) } ?? .null, .int(now), .int(now)])
        let person = try person(id: lastInsertID)!
        try recordEvent("person.created", data: person.eventData.merging(["kind": .string(kind)]) { $1 }, now: now)
        return person
    }

    /// True when the person holds at least one unrevoked grant.
    public func hasActiveAccess(personID: Int64) throws -> Bool {
        try !query("SELECT 1 FROM access_grant WHERE person_id = ? AND revoked_at IS NULL LIMIT 1", [.int(personID)]).isEmpty
    }

    /// Sets a new password hash, ends every session and voids every outstanding link: any
    /// password change does all three (SPEC §5). Call inside `write`.
    public func setPassword(personID: Int64, hash: String, mustChange: Bool, now: Int64) throws {
        try execute("""
            UPDATE person SET password_hash = ?, must_change_password = ?, password_changed_at = ?, updated_at = ? WHERE id = ?
            """, [.text(hash), .int(mustChange ? 1 : 0), .int(now), .int(now), .int(personID)])
        try execute("DELETE FROM session WHERE person_id = ?", [.int(personID)])
        try voidTokens(personID: personID, now: now)
        if let person = try person(id: personID) {
            try recordEvent("password.changed", data: person.eventData.merging(["temporary": .bool(mustChange)]) { $1 }, now: now)
        }
    }
}
