import LatchkeyCore
import LatchkeyStore

/// Offers (memberships) and who holds access to them.
public enum Access {
    /// Adds offer `slug` (letters, digits, `-` and `_`, at most 64) named `name`.
    public static func addOffer(slug: String, name: String, by actor: String, db: Database, now: Int64) throws {
        guard !slug.isEmpty, slug.count <= 64, slug.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw AccessError("an offer slug is letters, digits, - and _ (at most 64)")
        }
        guard !name.trimmed.isEmpty, !name.hasControlCharacters, name.count <= 200 else { throw AccessError("missing --name") }
        try db.write {
            guard try db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(slug)]).isEmpty else { throw AccessError("offer '\(slug)' already exists") }
            try db.execute("INSERT INTO offer (slug, name, created_at) VALUES (?, ?, ?)", [.text(slug), .text(name), .int(now)])
            try db.audit(AuditEvent(actor: actor, action: "offer.created", detail: slug), now: now)
        }
    }

    /// An offer and how many hold it now.
    public struct Offer: Sendable {
        /// Its slug and name.
        public let slug: String, name: String
        /// People with active access.
        public let members: Int64
    }

    /// Every offer, by slug: what `offer list` and the API's `GET /v1/offers` show.
    public static func offers(db: Database) throws -> [Offer] {
        try db.query("""
            SELECT o.slug, o.name, (SELECT count(*) FROM access_grant g WHERE g.offer_id = o.id AND g.revoked_at IS NULL) AS members
            FROM offer o ORDER BY o.slug
            """).map { Offer(slug: $0.text("slug") ?? "", name: $0.text("name") ?? "", members: $0.int("members") ?? 0) }
    }

    /// Grants `person` access to offer `slug`, making a contact a customer. Granting what they
    /// already hold changes nothing and returns false. Call inside `write`.
    @discardableResult
    public static func grant(person: Person, offer slug: String, by actor: String, remoteAddr: String = "", db: Database, now: Int64) throws -> Bool {
        guard let offer = try db.query("SELECT id FROM offer WHERE slug = ?", [.text(slug)]).first?.int("id") else {
            throw AccessError("no offer '\(slug)' (see latchkey offer list; latchkey offer add \(slug) --name NAME)")
        }
        if try !db.query("SELECT 1 FROM access_grant WHERE person_id = ? AND offer_id = ? AND revoked_at IS NULL",
                         [.int(person.id), .int(offer)]).isEmpty {
            return false
        }
        try db.execute("""
            INSERT INTO access_grant (person_id, offer_id, granted_at, granted_by) VALUES (?, ?, ?, ?)
            ON CONFLICT (person_id, offer_id) DO UPDATE SET revoked_at = NULL, granted_at = excluded.granted_at, granted_by = excluded.granted_by
            """, [.int(person.id), .int(offer), .int(now), .text(actor)])
        try db.execute("UPDATE person SET kind = 'customer', updated_at = ? WHERE id = ?", [.int(now), .int(person.id)])
        try db.audit(AuditEvent(actor: actor, action: "access.granted", personID: person.id, subject: person.email, remoteAddr: remoteAddr, detail: slug), now: now)
        try db.recordEvent("access.granted", data: person.eventData.merging(["offer": .string(slug)]) { $1 }, now: now)
        return true
    }

    /// Revokes `person`'s access to `slug`; the last one revoked ends their sessions. Call inside `write`.
    public static func revoke(person: Person, offer slug: String, by actor: String, remoteAddr: String = "", db: Database, now: Int64) throws {
        try db.execute("""
            UPDATE access_grant SET revoked_at = ? WHERE person_id = ? AND revoked_at IS NULL
              AND offer_id = (SELECT id FROM offer WHERE slug = ?)
            """, [.int(now), .int(person.id), .text(slug)])
        guard db.changes == 1 else { throw AccessError("\(person.email) has no active access to '\(slug)'") }
        if try !db.hasActiveAccess(personID: person.id) {
            try db.execute("DELETE FROM session WHERE person_id = ?", [.int(person.id)])
        }
        try db.audit(AuditEvent(actor: actor, action: "access.revoked", personID: person.id, subject: person.email, remoteAddr: remoteAddr, detail: slug), now: now)
        try db.recordEvent("access.revoked", data: person.eventData.merging(["offer": .string(slug)]) { $1 }, now: now)
    }
}

/// An access change that cannot be made.
public struct AccessError: Error, CustomStringConvertible {
    /// The sentence shown to the operator.
    public let description: String
    /// An error with the sentence `message`.
    public init(_ message: String) { description = message }
}

extension Access.Offer {
    /// As `offer list --json` and the API write it.
    public var json: JSONOut { .object(["slug": .string(slug), "name": .string(name), "members": .int(members)]) }
}
