import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `GET reset?token=…` checks a link and moves the token out of the URL; `POST reset` sets
/// the new password.
///
/// The GET never consumes the token, so a mail scanner that fetches the link first does not
/// spend it. A valid token moves into a short-lived cookie scoped to this endpoint and the
/// browser is sent on to `reset.html`: the token then never appears in the address bar, the
/// history, or a Referer sent from the form page.
enum ResetEndpoint {
    /// How long the form may stay open between following the link and submitting it.
    static let cookieLifetime = 1800

    static func cookieName(_ request: CGIRequest) -> String { request.isHTTPS ? "__Secure-lk_reset" : "lk_reset" }

    static func cookie(_ value: String, maxAge: Int, _ context: Context) -> (String, String) {
        let secure = context.request.isHTTPS ? "; Secure" : ""
        return ("Set-Cookie", "\(cookieName(context.request))=\(value); Path=\(context.config.cgiPrefix)reset; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure)")
    }

    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "POST"])
        return context.request.method == "GET" ? try show(context) : try submit(context)
    }

    static func show(_ context: Context) throws -> Reply {
        let query = try context.request.query()
        let services = try context.services()
        let tokens = ResetTokens(db: services.db, key: services.key)
        let token = query["token"] ?? ""
        guard case let .valid(_, personID) = try tokens.check(token, now: context.now) else {
            return Reply(.redirect(to: context.pageURL("expired", locale: context.locale(query["lang"]))))
        }
        let own = try services.db.person(id: personID)?.locale ?? ""
        let locale = context.locale(own.isEmpty ? query["lang"] : own)
        return Reply(.redirect(to: context.pageURL("reset", locale: locale),
                               headers: [cookie(token, maxAge: cookieLifetime, context)]))
    }

    static func submit(_ context: Context) throws -> Reply {
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        let locale = context.locale(form["locale"])
        let token = context.request.cookie(cookieName(context.request)) ?? ""
        let services = try context.services()
        let outcome = try Recovery.resetPassword(token: token, password: form["new_password"] ?? "",
                                                 confirmation: form["confirm_password"] ?? "", language: locale,
                                                 remoteAddr: context.request.remoteAddr, services: services, now: context.now)
        let clear = cookie("", maxAge: 0, context)
        switch outcome {
        case let .done(_, mailID):
            return Reply(.redirect(to: context.pageURL("reset-done", locale: locale), headers: [clear]), after: .deliver([mailID]))
        case .expired:
            return Reply(.redirect(to: context.pageURL("expired", locale: locale), headers: [clear]))
        case let .rejected(problem):
            return Reply(.redirect(to: context.pageURL("reset", message: problem, locale: locale)))
        }
    }
}
