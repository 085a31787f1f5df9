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

/// One recorded entry of the audit trail.
public struct AuditEntry: Sendable {
    /// The row id.
    public let id: Int64
    /// When, in Unix seconds.
    public let at: Int64
    /// Who: an operator, `web`, `staff:EMAIL`.
    public let actor: String
    /// What, e.g. `reset.sent`.
    public let action: String
    /// The person it concerns, if any.
    public let personID: Int64?
    /// What it was done to.
    public let subject: String
    /// From where.
    public let remoteAddr: String
    /// Anything else kept.
    public let detail: String
}

extension Database {
    /// The audit trail, newest first, filtered by person, actor and action (exact), and time.
    public func auditTrail(personID: Int64? = nil, actor: String? = nil, action: String? = nil, since: Int64? = nil,
                           limit: Int = 200, offset: Int = 0) throws -> [AuditEntry] {
        var sql = "SELECT * FROM audit WHERE 1"
        var parameters: [SQLValue] = []
        if let personID { sql += " AND person_id = ?"; parameters.append(.int(personID)) }
        if let actor { sql += " AND actor = ?"; parameters.append(.text(actor)) }
        if let action { sql += " AND action = ?"; parameters.append(.text(action)) }
        if let since { sql += " AND at >= ?"; parameters.append(.int(since)) }
        sql += " ORDER BY id DESC LIMIT \(max(1, min(limit, 10_000))) OFFSET \(max(0, offset))"
        return try query(sql, parameters).map { row in
            AuditEntry(id: row.int("id") ?? 0, at: row.int("at") ?? 0, actor: row.text("actor") ?? "", action: row.text("action") ?? "",
                       personID: row.int("person_id"), subject: row.text("subject") ?? "", remoteAddr: row.text("remote_addr") ?? "",
                       detail: row.text("detail") ?? "")
        }
    }
}
