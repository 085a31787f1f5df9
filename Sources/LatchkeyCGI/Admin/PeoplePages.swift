import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The console's people: search, the record, a new person, and bulk reset from the results.
enum PeoplePages {
    /// Results per page.
    static let pageSize = 25
    /// Longest search text looked at.
    static let maxQueryCharacters = 100
    /// Most people one bulk reset sends to: a page of results.
    static let maxBulk = 25

    static func search(_ console: Console) throws -> Reply {
        try console.require(.search)
        let query = try console.context.request.query()
        let text = String((query["q"] ?? "").trimmed.prefix(maxQueryCharacters))
        let pageNumber = max(1, min(Int(query["page"] ?? "1") ?? 1, 10_000))
        let found = try PeopleSearch.find(text, offset: (pageNumber - 1) * pageSize, limit: pageSize + 1, db: console.services.db)
        let canBulk = ConsoleAction.bulkReset.allowed(for: try console.staff().role)
        let rows: [TemplateValue] = found.prefix(pageSize).map { person in
            ["id": .string(String(person.id)), "email": .string(person.email), "name": .string(person.name),
             "kind": .string(console.table.string("admin.kind." + person.kind) ?? person.kind),
             "disabled": .bool(person.disabledAt != nil), "selectable": .bool(canBulk && person.isCustomer && person.disabledAt == nil)]
        }
        func link(_ page: Int) -> TemplateValue { .string(console.base + "/people?q=" + Escape.urlComponent(text) + "&page=\(page)") }
        return try console.page("people", [
            "q": .string(text), "results": .list(rows), "none": .bool(rows.isEmpty), "can_bulk": .bool(canBulk && !rows.isEmpty),
            "can_create": .bool(ConsoleAction.addContact.allowed(for: try console.staff().role)),
            "short_query": .bool(!text.isEmpty && text.count < PeopleSearch.minimumSubstring),
            "previous": pageNumber > 1 ? link(pageNumber - 1) : false, "next": found.count > pageSize ? link(pageNumber + 1) : false,
            "page_number": .string(String(pageNumber)), "message": console.message(query),
        ])
    }

    static func record(_ person: Person, _ console: Console) throws -> Reply {
        try console.require(.view)
        let role = try console.staff().role
        let file = try PersonFile.load(person, services: console.services, now: console.now)
        let query = try console.context.request.query()
        var values = PersonView(file: file, console: console).values
        values["message"] = console.message(query)
        let showLink = file.link != nil && ConsoleAction.viewLink.allowed(for: role)
        if showLink, let link = file.link {
            // Showing a live link is recorded: whoever saw it could have used it.
            try console.services.db.write {
                try console.services.db.audit(AuditEvent(actor: console.actor.name, action: "link.viewed", personID: person.id,
                                                         subject: person.email, remoteAddr: console.actor.remoteAddr), now: console.now)
            }
            values["link"] = ["url": .string(ResetTokens.url(token: link.token, config: console.config)),
                              "sent_at": Console.when(link.createdAt), "sent_by": .string(link.createdBy),
                              "expires_at": Console.when(link.expiresAt)]
        } else {
            values["link"] = false
        }
        values["link_hidden"] = .bool(file.link != nil && !showLink)
        values["actions"] = .list(PersonView.actions(for: person, file: file, role: role, console: console))
        values["can_retry"] = .bool(ConsoleAction.retry.allowed(for: role))
        return try console.page("person", values)
    }

    static func newPerson(_ console: Console) throws -> Reply {
        try console.require(.addContact)
        let role = try console.staff().role
        let offers = try console.services.db.query("SELECT slug, name FROM offer ORDER BY slug").map {
            ["slug": .string($0.text("slug") ?? ""), "name": .string($0.text("name") ?? "")] as TemplateValue
        }
        let query = try console.context.request.query()
        return try console.page("new", ["offers": .list(offers), "can_customer": .bool(ConsoleAction.create.allowed(for: role)),
                                        "message": console.message(query)])
    }

    static func create(_ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        let email = Person.normalize(form["email"] ?? "")
        let name = (form["name"] ?? "").trimmed
        let contact = form["kind"] == "contact"
        try console.require(contact ? .addContact : .create)
        guard Person.isPlausibleEmail(email), name.count <= 200 else { return console.redirect("/people/new", message: "invalid_email") }
        let offer = (form["offer"] ?? "").isEmpty ? nil : form["offer"]
        do {
            if contact {
                let person = try Support.addContact(email: email, name: name, by: console.actor, services: console.services, now: console.now)
                return console.redirect("/people/\(person.id)", message: "contact_added")
            }
            let created = try Support.createCustomer(email: email, name: name, offer: offer, sendEmail: form["send_email"] != nil,
                                                     by: console.actor, services: console.services, now: console.now)
            let reply = console.redirect("/people/\(created.person.id)", message: created.mailID == nil ? "created" : "created_sent")
            return created.mailID.map { Reply(reply.response, after: .deliver([$0])) } ?? reply
        } catch Support.Refusal.exists {
            return console.redirect("/people/new", message: "exists_refused")
        } catch let error as AccessError {
            throw HTTPError(404, error.description)
        }
    }

    static func bulkReset(_ console: Console) throws -> Reply {
        let form = try console.context.form(repeatable: ["ids"])
        try console.checkPost(form)
        try console.require(.bulkReset)
        let ids = form.all("ids")
        guard !ids.isEmpty, ids.count <= maxBulk else { throw HTTPError(400, "bulk reset takes 1 to \(maxBulk) people") }
        let people = try ids.map { try AdminEndpoint.person($0, console) }
        guard form["confirmed"] == "yes" else {
            return try console.page("bulk", ["people": .list(people.map { ["id": .string(String($0.id)), "email": .string($0.email)] })])
        }
        var mail: [Int64] = [], skipped = 0
        for person in people {
            do { mail.append(try Support.sendReset(person, by: console.actor, services: console.services, now: console.now).mailID) }
            catch is Support.Refusal { skipped += 1 }
        }
        let reply = console.redirect("/people", message: skipped == 0 ? "bulk_sent" : "bulk_partly_sent")
        return Reply(reply.response, after: mail.isEmpty ? nil : .deliver(mail))
    }
}
