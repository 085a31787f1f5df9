import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// The actions on one person: a confirmation page (GET) for each, then the action (POST),
/// which redirects back to the record with its outcome. Each goes through the same core
/// function as the command line.
enum PersonActions {
    static func confirm(_ action: ConsoleAction, _ person: Person, _ console: Console) throws -> Reply {
        try console.require(action)
        let query = try console.context.request.query()
        let key = action.localeKey
        var offers: [TemplateValue] = []
        if action == .grant || action == .revoke {
            let sql = action == .grant ? "SELECT slug, name FROM offer ORDER BY slug"
                : "SELECT o.slug, o.name FROM offer o JOIN access_grant g ON g.offer_id = o.id WHERE g.person_id = ? AND g.revoked_at IS NULL ORDER BY o.slug"
            offers = try console.services.db.query(sql, action == .grant ? [] : [.int(person.id)]).map {
                ["slug": .string($0.text("slug") ?? ""), "name": .string($0.text("name") ?? "")]
            }
        }
        return try console.page("confirm", [
            "id": .string(String(person.id)), "email": .string(person.email), "name": .string(person.name),
            "action": .string(console.base + "/people/\(person.id)/" + action.rawValue), "back": .string(console.base + "/people/\(person.id)"),
            "title": .string(console.table.string("admin.confirm.\(key)_title") ?? key),
            "explain": .string(console.table.string("admin.confirm.\(key)_explain") ?? ""),
            "submit": .string(console.table.string("admin.confirm.\(key)_submit") ?? key),
            "password_fields": .bool(action == .setPassword), "email_field": .bool(action == .setEmail),
            "offer_select": .bool(action == .grant || action == .revoke), "offers": .list(offers), "no_offers": .bool(offers.isEmpty && (action == .grant || action == .revoke)),
            "confirm_email": .bool(action == .delete), "step_up": .bool(action.needsStepUp && console.stepUpDue),
            "danger": .bool(action.isDestructive),
            "min": .string(String(console.config.password.minLength)), "max": .string(String(console.config.password.maxLength)),
            "message": console.message(query),
        ])
    }

    static func perform(_ action: ConsoleAction, _ person: Person, _ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        try console.require(action)
        let record = "/people/\(person.id)"
        let confirmPage = record + "/" + action.rawValue
        guard try console.steppedUp(action, form) else { return console.redirect(confirmPage, message: "step_up_refused") }
        let services = console.services, actor = console.actor, now = console.now
        func done(_ message: String, mail: [Int64] = []) -> Reply {
            let reply = console.redirect(record, message: message)
            return mail.isEmpty ? reply : Reply(reply.response, after: .deliver(mail))
        }
        do {
            switch action {
            case .reset:
                return done("reset_sent", mail: [try Support.sendReset(person, by: actor, services: services, now: now).mailID])
            case .welcome:
                return done("welcome_sent", mail: [try Support.resendWelcome(person, by: actor, services: services, now: now).mailID])
            case .retry:
                guard let id = Int64(form["mail"] ?? "") else { throw HTTPError(400, "retry needs a message id") }
                let outcome = try Support.retryMail(id, of: person, by: actor, services: services, now: now)
                return done(outcome == .sent ? "retry_sent" : "retry_failed")
            case .endSessions:
                try Support.endSessions(person, by: actor, services: services, now: now)
                return done("sessions_ended")
            case .setPassword:
                let password = form["new_password"] ?? ""
                let mailID = try Support.setPassword(person, password: password, confirmation: form["confirm_password"] ?? "",
                                                     temporary: form["temporary"] != nil, notify: form["notify"] != nil, by: actor, services: services, now: now)
                return done(form["temporary"] != nil ? "temporary_set" : "password_set", mail: mailID.map { [$0] } ?? [])
            case .setEmail:
                let new = Person.normalize(form["new_email"] ?? "")
                guard Person.isPlausibleEmail(new) else { return console.redirect(confirmPage, message: "invalid_email") }
                do {
                    return done("email_changed", mail: [try People.changeEmail(person, to: new, by: actor.name, remoteAddr: actor.remoteAddr, services: services, now: now)])
                } catch is AccessError {
                    return console.redirect(confirmPage, message: "exists_refused")
                }
            case .grant, .revoke:
                let offer = form["offer"] ?? ""
                guard !offer.isEmpty, try !services.db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(offer)]).isEmpty else {
                    throw HTTPError(404, "no offer \(offer.prefix(64))")
                }
                if action == .revoke {
                    try services.db.write { try Access.revoke(person: person, offer: offer, by: actor.name, remoteAddr: actor.remoteAddr, db: services.db, now: now) }
                    return done("revoked")
                }
                let sent = try Support.grant(person, offer: offer, welcome: services.config.welcomeOnGrant, by: actor, services: services, now: now)
                return done("granted", mail: sent.map { [$0.mailID] } ?? [])
            case .disable, .enable:
                try People.setDisabled(person, action == .disable, by: actor.name, remoteAddr: actor.remoteAddr, db: services.db, now: now)
                return done(action == .disable ? "disabled" : "enabled")
            case .delete:
                guard Person.normalize(form["confirm"] ?? "") == person.email else { return console.redirect(confirmPage, message: "confirm_refused") }
                try People.erase(person, by: actor.name, remoteAddr: actor.remoteAddr, db: services.db, now: now)
                return console.redirect("/people", message: "deleted")
            default:
                throw HTTPError(404, "no such person action")
            }
        } catch let refusal as Support.Refusal {
            switch refusal {
            case let .password(key): return console.redirect(confirmPage, message: key)
            case .mail: throw HTTPError(404, refusal.description)
            default: return done("refused")
            }
        } catch let error as AccessError {
            throw HTTPError(409, error.description)
        }
    }
}
