import LatchkeyAccounts
import LatchkeyCore

/// `confirm-email`: the link sent to a new address. GET shows a Confirm button and changes
/// nothing (mail scanners open links); POST, from that button, makes the change.
enum ConfirmEmailEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "POST"])
        let services = try context.services()
        if context.request.method == "GET" {
            let query = try context.request.query()
            let token = query["token"] ?? ""
            guard let pending = try AccountSettings.pendingChange(token: token, services: services, now: context.now) else {
                return try page("expired", [:], context, locale: query["lang"], status: 410)
            }
            // The language links show this same page in another language; reading it changes nothing.
            return try page("confirm", ["token": .string(token), "new_email": .string(pending.newEmail)], context,
                            locale: query["lang"] ?? pending.person.locale) { code in
                context.config.cgiPrefix + "confirm-email?token=" + token + "&lang=" + code
            }
        }
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        let live = try SessionCookie.live(context)
        guard let done = try AccountSettings.confirmEmailChange(token: form["token"] ?? "", session: live, remoteAddr: context.request.remoteAddr,
                                                                services: services, now: context.now) else {
            return try page("expired", [:], context, locale: form["locale"], status: 410)
        }
        // Every other session ended with the change; this browser, if it was logged in as them, stays.
        let staying = live.map { _ in true } ?? false
        var reply = try page("done", ["new_email": .string(done.email), "still_logged_in": .bool(staying)], context, locale: form["locale"])
        reply.after = .deliver([done.mailID])
        return reply
    }

    /// The page in `state` (`confirm`, `done` or `expired`, each a flag the template tests).
    static func page(_ state: String, _ values: [String: TemplateValue], _ context: Context, locale: String? = nil, status: Int = 200,
                     link: ((String) -> String)? = nil) throws -> Reply {
        let code = context.locale(locale.flatMap { $0.isEmpty ? nil : $0 })
        var values = values
        values["is_" + state] = .bool(true)
        return try AccountPage.render("confirm-email", values, locale: code, context: context, status: status) { code in
            link?(code) ?? context.config.cgiPrefix + "account?lang=" + code
        }
    }
}
