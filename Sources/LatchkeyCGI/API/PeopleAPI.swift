import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The API's handlers: each reads its input, calls the core (the same functions as the
/// command line and the console), and words the outcome as JSON.
enum PeopleAPI {
    /// `GET /v1/people?email=E`.
    @Sendable static func find(_ call: APICall) throws -> APIReply {
        let query = try call.context.request.query()
        guard let email = query["email"], !email.isEmpty else { throw APIProblem(400, "the email query parameter is required") }
        guard let person = try call.services.db.person(email: email) else { throw APIProblem(404, "no one has that address") }
        return APIReply(200, try json(person, call))
    }

    /// `GET /v1/people/{id}`.
    @Sendable static func show(_ call: APICall) throws -> APIReply {
        APIReply(200, try json(try person(call), call))
    }

    /// `POST /v1/people`: create (201), or find by email and update what was sent (200).
    @Sendable static func upsert(_ call: APICall) throws -> APIReply {
        let fields = try APIFields(try call.body(required: true), allowed: ["email", "name", "external_id", "locale"])
        let email = try fields.string("email", required: true) ?? ""
        do {
            let result = try Support.upsert(email: email, fields: Support.Fields(name: try fields.string("name"), externalID: try fields.string("external_id"),
                                                                              locale: try fields.string("locale")),
                                            by: call.actor, services: call.services, now: call.context.now)
            let location = call.context.config.origin + call.context.config.cgiPrefix + "api/v1/people/\(result.person.id)"
            return APIReply(result.created ? 201 : 200, try json(result.person, call), headers: result.created ? [("Location", location)] : [])
        } catch let invalid as Support.Invalid {
            throw APIProblem(422, invalid.description, field: invalid.field)
        }
    }

    /// `POST /v1/people/{id}/access`: grant `offer`; again is no change. The welcome email goes
    /// with a new grant to someone who never set a password, unless `send_welcome` is false.
    @Sendable static func grant(_ call: APICall) throws -> APIReply {
        let person = try person(call)
        let fields = try APIFields(try call.body(required: true), allowed: ["offer", "send_welcome"])
        let offer = try fields.string("offer", required: true) ?? ""
        guard try offerExists(offer, call) else { throw APIProblem(422, "no such offer (GET /v1/offers lists them)", field: "offer") }
        let welcome = try fields.bool("send_welcome", default: true) && call.context.config.welcomeOnGrant
        let before = try PersonFile.grants(of: person, db: call.services.db).contains { $0.slug == offer && $0.revokedAt == nil }
        let sent = try Support.grant(person, offer: offer, welcome: welcome, by: call.actor, services: call.services, now: call.context.now)
        let after = try call.services.db.person(id: person.id) ?? person
        return APIReply(200, .object(["granted": .bool(!before), "welcome_sent": .bool(sent != nil), "person": try json(after, call)]),
                        mail: sent.map { [$0.mailID] } ?? [])
    }

    /// `DELETE /v1/people/{id}/access/{offer}`: 204 whether or not it was held.
    @Sendable static func revoke(_ call: APICall) throws -> APIReply {
        let person = try person(call)
        let offer = call.parameters[1]
        guard try offerExists(offer, call) else { throw APIProblem(404, "no such offer") }
        let db = call.services.db
        try db.write {
            // Checked inside the transaction: two revokes at once both answer 204.
            guard try PersonFile.grants(of: person, db: db).contains(where: { $0.slug == offer && $0.revokedAt == nil }) else { return }
            try Access.revoke(person: person, offer: offer, by: call.actor.name, remoteAddr: call.actor.remoteAddr, db: db, now: call.context.now)
        }
        return APIReply(204)
    }

    /// `POST /v1/people/{id}/reset`: email a reset link (202); the link itself only for `links:read`.
    @Sendable static func reset(_ call: APICall) throws -> APIReply {
        let person = try person(call)
        _ = try APIFields(try call.body(required: false), allowed: [])
        let sent = try refused { try Support.sendReset(person, by: call.actor, services: call.services, now: call.context.now) }
        return APIReply(202, sentJSON(mailID: sent.mailID, link: sent.link, call), mail: [sent.mailID])
    }

    /// `POST /v1/people/{id}/welcome`: resend the welcome email (202), the password unchanged.
    @Sendable static func welcome(_ call: APICall) throws -> APIReply {
        let person = try person(call)
        _ = try APIFields(try call.body(required: false), allowed: [])
        let sent = try refused { try Support.resendWelcome(person, by: call.actor, services: call.services, now: call.context.now) }
        return APIReply(202, sentJSON(mailID: sent.mailID, link: sent.link, call), mail: [sent.mailID])
    }

    /// `GET /v1/offers`.
    @Sendable static func offers(_ call: APICall) throws -> APIReply {
        APIReply(200, .object(["offers": .array(try Access.offers(db: call.services.db).map(\.json))]))
    }

    /// The person the path's `{id}` names; 404 for anything else.
    static func person(_ call: APICall) throws -> Person {
        let text = call.parameters[0]
        guard text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let id = Int64(text),
              let person = try call.services.db.person(id: id) else { throw APIProblem(404, "no person with that id") }
        return person
    }

    static func offerExists(_ slug: String, _ call: APICall) throws -> Bool {
        try !call.services.db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(slug)]).isEmpty
    }

    /// A core refusal as a 409: the request is fine, the person's state does not allow it.
    static func refused<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let refusal as Support.Refusal {
            switch refusal {
            case .contact: throw APIProblem(409, "this person is a contact, with no login: grant an offer first")
            case .disabled: throw APIProblem(409, "this person's login is disabled")
            default: throw APIProblem(409, refusal.description)
            }
        }
    }

    static func sentJSON(mailID: Int64, link: ResetTokens.Link?, _ call: APICall) -> JSONOut {
        var members: [String: JSONOut] = ["sent": .bool(true), "mail_id": .int(mailID)]
        if let link {
            members["expires_at"] = .string(Clock.iso8601(link.expiresAt))
            if call.key.scopes.contains(.linksRead) { members["link"] = .string(ResetTokens.url(token: link.token, config: call.context.config)) }
        }
        return .object(members)
    }

    /// A person as the API shows them.
    static func json(_ person: Person, _ call: APICall) throws -> JSONOut {
        let grants = try PersonFile.grants(of: person, db: call.services.db)
        return .object([
            "id": .int(person.id), "email": .string(person.email), "name": .string(person.name), "kind": .string(person.kind),
            "locale": .string(person.locale), "external_id": .optional(person.externalID), "disabled": .bool(person.disabledAt != nil),
            "password_set": .bool(person.passwordHash != nil), "created_at": .string(Clock.iso8601(person.createdAt)),
            "last_login_at": .optional(person.lastLoginAt.map(Clock.iso8601)),
            "access": .array(grants.map {
                .object(["offer": .string($0.slug), "name": .string($0.name), "active": .bool($0.revokedAt == nil),
                         "granted_at": .string(Clock.iso8601($0.grantedAt)), "revoked_at": .optional($0.revokedAt.map(Clock.iso8601))])
            }),
        ])
    }
}
