import LatchkeyCore
import LatchkeyStore

/// Changes to a person's record that support staff make: address, login on/off, erasure.
public enum People {
    /// Moves `person` to `newEmail`: voids links, ends sessions, and tells the old address.
    /// Returns the queued mail's id. Its own transaction (a savepoint inside another `write`).
    /// `keeping` is a session of theirs that stays (the customer's own browser, confirming).
    public static func changeEmail(_ person: Person, to newEmail: String, by actor: String, remoteAddr: String = "", keeping: Int64? = nil,
                                   services: Services, now: Int64) throws -> Int64 {
        let db = services.db
        return try db.write {
            guard try db.person(email: newEmail) == nil else { throw AccessError("\(newEmail) already belongs to someone") }
            try db.execute("UPDATE person SET email = ?, updated_at = ? WHERE id = ?", [.text(Person.normalize(newEmail)), .int(now), .int(person.id)])
            try db.voidTokens(personID: person.id, now: now)
            try db.execute("DELETE FROM session WHERE person_id = ? AND id != ?", [.int(person.id), .int(keeping ?? -1)])
            try db.audit(AuditEvent(actor: actor, action: "email.changed", personID: person.id, subject: Person.normalize(newEmail),
                                    remoteAddr: remoteAddr, detail: "from \(person.email)"), now: now)
            return try services.mailer.queue(.emailChanged, to: person, recipient: person.email,
                                             values: ["new_email": .string(Person.normalize(newEmail))], by: actor, now: now)
        }
    }

    /// Closes (`disabled` true) or reopens login; closing ends sessions and voids links.
    public static func setDisabled(_ person: Person, _ disabled: Bool, by actor: String, remoteAddr: String = "", db: Database, now: Int64) throws {
        try db.write {
            try db.execute("UPDATE person SET disabled_at = ?, updated_at = ? WHERE id = ?",
                           [disabled ? .int(now) : .null, .int(now), .int(person.id)])
            if disabled {
                try db.execute("DELETE FROM session WHERE person_id = ?", [.int(person.id)])
                try db.voidTokens(personID: person.id, now: now)
            }
            try db.audit(AuditEvent(actor: actor, action: disabled ? "person.disabled" : "person.enabled", personID: person.id,
                                    subject: person.email, remoteAddr: remoteAddr), now: now)
            if disabled { try db.recordEvent("person.disabled", data: person.eventData, now: now) }
        }
    }

    /// Erases `person` with their links, sessions, grants and mail. The audit trail keeps that
    /// events happened, but no longer says to whom: subjects and details naming them are blanked.
    public static func erase(_ person: Person, by actor: String, remoteAddr: String = "", db: Database, now: Int64) throws {
        try db.write {
            try db.execute("""
                INSERT INTO setting (name, value) VALUES ('person.erased_max_id', ?)
                ON CONFLICT (name) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))
                """, [.text(String(person.id))])
            try db.execute("DELETE FROM person WHERE id = ?", [.int(person.id)])
            try db.execute("UPDATE audit SET subject = '', detail = '', remote_addr = '' WHERE person_id = ?", [.int(person.id)])
            try db.audit(AuditEvent(actor: actor, action: "person.deleted", personID: person.id, remoteAddr: remoteAddr), now: now)
            // Receivers erase their copy by id; the event carries no more of the person than that.
            try db.recordEvent("person.deleted", data: ["person": .object(["id": .int(person.id), "external_id": .optional(person.externalID)])], now: now)
        }
    }
}
