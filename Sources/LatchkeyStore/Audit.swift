/// One entry of the audit trail: who did what, when, from where.
public struct AuditEvent: Sendable {
    /// Who did it: an operator name, or `web` for the CGIs.
    public var actor: String
    /// What was done, e.g. `access.granted` or `login.failed`.
    public var action: String
    /// The person it concerns, if any.
    public var personID: Int64?
    /// What it was done to, usually the person's email address.
    public var subject: String
    /// The client's IP address for web actions; empty otherwise.
    public var remoteAddr: String
    /// Anything else worth keeping, e.g. the offer's slug.
    public var detail: String

    /// An event; `actor` is an operator name, or `web` for the CGIs.
    public init(actor: String, action: String, personID: Int64? = nil, subject: String = "", remoteAddr: String = "", detail: String = "") {
        self.actor = actor
        self.action = action
        self.personID = personID
        self.subject = subject
        self.remoteAddr = remoteAddr
        self.detail = detail
    }
}

extension Database {
    /// Appends `event` to the audit trail.
    public func audit(_ event: AuditEvent, now: Int64) throws {
        try execute("""
            INSERT INTO audit (at, actor, action, person_id, subject, remote_addr, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.int(now), .text(event.actor), .text(event.action), event.personID.map { .int($0) } ?? .null,
                  .text(event.subject), .text(event.remoteAddr), .text(event.detail)])
    }
}
