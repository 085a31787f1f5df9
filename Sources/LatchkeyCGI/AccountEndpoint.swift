import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `account`: the customer's own settings (SPEC §10). GET renders the page for the person
/// logged in; POST's `action` is `password` (the default), `profile`, `email` or `sessions`,
/// each answered with a redirect back to the page and its message (post/redirect/get).
enum AccountEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "POST"])
        if context.request.method == "GET" { return try AccountPage.show(context) }
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        // The page's language rides in `lang`; `locale` is the profile's field (SPEC §10).
        let locale = context.locale(form["lang"] ?? form["locale"])
        guard let live = try SessionCookie.live(context) else {
            return Reply(.redirect(to: context.pageURL("account", message: "login_required", locale: locale)))
        }
        let services = try context.services(), remote = context.request.remoteAddr
        switch form["action"] ?? "password" {
        case "password":
            return try changePassword(form, live, locale, context)
        case "profile":
            do {
                try AccountSettings.updateProfile(live.person, name: form["name"], locale: form["locale"],
                                                  remoteAddr: remote, services: services, now: context.now)
            } catch is Support.Invalid {
                return AccountPage.back(context, "profile_invalid", locale)
            }
            return AccountPage.back(context, "profile_saved", context.locale(form["locale"]))
        case "email":
            do {
                let mailID = try AccountSettings.requestEmailChange(live.person, to: form["new_email"] ?? "", currentPassword: form["current_password"] ?? "",
                                                                    remoteAddr: remote, services: services, now: context.now)
                var reply = AccountPage.back(context, "email_sent", locale)
                reply.after = .deliver([mailID])
                return reply
            } catch let refusal as AccountSettings.EmailRefusal {
                return AccountPage.back(context, refusal.rawValue, locale)
            }
        case "sessions":
            try AccountSettings.endOtherSessions(live, remoteAddr: remote, services: services, now: context.now)
            return AccountPage.back(context, "sessions_ended", locale)
        default:
            throw HTTPError(400, "unknown account action")
        }
    }

    /// The password form, as the static account page has always posted it.
    static func changePassword(_ form: FormData, _ live: Sessions.Live, _ locale: String, _ context: Context) throws -> Reply {
        let outcome = try Login.changePassword(session: live, current: form["current_password"] ?? "", new: form["new_password"] ?? "",
                                               confirmation: form["confirm_password"] ?? "", remoteAddr: context.request.remoteAddr,
                                               userAgent: context.request.userAgent, services: try context.services(), now: context.now)
        switch outcome {
        case let .done(cookie, mailID):
            return Reply(.redirect(to: context.pageURL("account-done", locale: locale), headers: [SessionCookie.set(cookie, context)]),
                         after: .deliver([mailID]))
        case .wrongCurrent:
            return Reply(.redirect(to: context.pageURL("account", message: "wrong_current", locale: locale)))
        case let .rejected(problem):
            return Reply(.redirect(to: context.pageURL("account", message: problem, locale: locale)))
        }
    }
}
