import LatchkeyCore
import LatchkeyStore

extension Support {
    /// A person's fields as another system sends them; nil leaves a field as it is.
    public struct Fields: Sendable {
        /// Display name.
        public var name: String?
        /// The other system's id for them (unique).
        public var externalID: String?
        /// Language for their emails: one of the site's.
        public var locale: String?

        /// Fields to set.
        public init(name: String? = nil, externalID: String? = nil, locale: String? = nil) {
            self.name = name
            self.externalID = externalID
            self.locale = locale
        }
    }

    /// Why fields cannot be taken, naming the field (for a 422).
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        /// The field at fault.
        public let field: String
        /// What is wrong with it.
        public let description: String
    }

    /// Finds the person with `email` and updates the fields given, or creates them as a contact
    /// (a grant makes them a customer). Returns the person and whether they are new.
    public static func upsert(email: String, fields: Fields, by actor: Actor, services: Services, now: Int64) throws -> (person: Person, created: Bool) {
        let address = Person.normalize(email)
        guard Person.isPlausibleEmail(address) else { throw Invalid(field: "email", description: "is not an email address") }
        try check(fields, config: services.config)
        let db = services.db
        return try db.write {
            if let externalID = fields.externalID, let holder = try db.query("SELECT email FROM person WHERE external_id = ?", [.text(externalID)]).first?.text("email"),
               holder != address {
                throw Invalid(field: "external_id", description: "already belongs to another person")
            }
            if let existing = try db.person(email: address) {
                return (try update(existing, fields, by: actor, db: db, now: now), false)
            }
            return (try insert(email: address, name: fields.name ?? "", kind: "contact", locale: fields.locale ?? "", externalID: fields.externalID,
                               by: actor, db: db, now: now), true)
        }
    }

    /// Sets whichever of `fields` differ and records it; the updated person. Call inside `write`.
    static func update(_ person: Person, _ fields: Fields, by actor: Actor, db: Database, now: Int64) throws -> Person {
        var changed: [String] = [], sets: [String] = [], values: [SQLValue] = []
        if let name = fields.name, name != person.name { changed.append("name"); sets.append("name = ?"); values.append(.text(name)) }
        if let id = fields.externalID, id != person.externalID { changed.append("external_id"); sets.append("external_id = ?"); values.append(.text(id)) }
        if let locale = fields.locale, locale != person.locale { changed.append("locale"); sets.append("locale = ?"); values.append(.text(locale)) }
        guard !changed.isEmpty else { return person }
        try db.execute("UPDATE person SET \(sets.joined(separator: ", ")), updated_at = ? WHERE id = ?", values + [.int(now), .int(person.id)])
        try db.audit(AuditEvent(actor: actor.name, action: "person.updated", personID: person.id, subject: person.email,
                                remoteAddr: actor.remoteAddr, detail: changed.joined(separator: ", ")), now: now)
        return try db.person(id: person.id) ?? person
    }

    static func check(_ fields: Fields, config: SiteConfig) throws {
        if let name = fields.name, name.count > 200 || name.hasControlCharacters {
            throw Invalid(field: "name", description: "must be at most 200 characters, without control characters")
        }
        if let id = fields.externalID, id.isEmpty || id.count > 255 || id.hasControlCharacters {
            throw Invalid(field: "external_id", description: "must be 1 to 255 characters, without control characters")
        }
        if let locale = fields.locale, !locale.isEmpty, !config.locales.contains(locale) {
            throw Invalid(field: "locale", description: "must be one of the site's languages (\(config.locales.joined(separator: ", ")))")
        }
    }
}
