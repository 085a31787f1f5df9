import LatchkeyAccounts
import LatchkeyCore

/// `POST account`: a logged-in customer changes their password with the current one.
enum AccountEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["POST"])
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        let locale = context.locale(form["locale"])
        guard let live = try SessionCookie.live(context) else {
            return Reply(.redirect(to: context.pageURL("account", message: "login_required", locale: locale)))
        }
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
