import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The login session cookie: `HttpOnly; SameSite=Lax; Path=/`, and under HTTPS `Secure` with
/// the `__Host-` prefix, which browsers only accept from a secure origin without a Domain.
enum SessionCookie {
    static func name(_ request: CGIRequest) -> String { request.isHTTPS ? "__Host-lk_session" : "lk_session" }

    /// Sets the cookie to `value` for the session's absolute lifetime.
    static func set(_ value: String, _ context: Context) -> (String, String) {
        header(value, maxAge: Int(context.config.session.absoluteTimeout.seconds), context)
    }

    /// Clears the cookie.
    static func clear(_ context: Context) -> (String, String) { header("", maxAge: 0, context) }

    static func header(_ value: String, maxAge: Int, _ context: Context) -> (String, String) {
        header(named: name(context.request), value, maxAge: Int64(maxAge), sameSite: "Lax", context.request)
    }

    /// A `Set-Cookie` for a cookie of the whole site that scripts cannot read, `Secure` under
    /// HTTPS: the customer's session (`Lax`) and the staff console's (`Strict`).
    static func header(named name: String, _ value: String, maxAge: Int64, sameSite: String, _ request: CGIRequest) -> (String, String) {
        ("Set-Cookie", "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=\(sameSite)\(request.isHTTPS ? "; Secure" : "")")
    }

    /// The live session the request carries, or nil.
    static func live(_ context: Context) throws -> Sessions.Live? {
        guard let cookie = context.request.cookie(name(context.request)) else { return nil }
        let services = try context.services()
        return try Sessions(db: services.db, key: services.key, config: context.config).find(cookie, now: context.now)
    }

    /// True when the session may read the members area: a customer, enabled, with active
    /// access, and not held to change a temporary password.
    static func admitsMembers(_ live: Sessions.Live) -> Bool {
        live.person.isCustomer && live.person.disabledAt == nil && live.hasAccess && !live.person.mustChangePassword
    }

    /// The answer for a visitor the members area does not admit, or nil for one it does
    /// (`session`, the request's live session): to log in (remembering `wanted`), or to the
    /// account page when the session is live but held to change its password or without access.
    static func refuseMembers(_ session: Sessions.Live?, then wanted: String, _ context: Context) -> Reply? {
        if let live = session, admitsMembers(live) { return nil }
        if let live = session, live.person.mustChangePassword {
            return Reply(.redirect(to: context.pageURL("account", message: "must_change", locale: context.locale(live.person.locale))))
        }
        if let live = session, !live.hasAccess {
            return Reply(.redirect(to: context.pageURL("account", message: "no_access", locale: context.locale(live.person.locale))))
        }
        return loginFirst(then: wanted, message: "session_expired", locale: context.config.defaultLocale, context)
    }

    /// The `next` cookie the members gate sets for the login that follows.
    static let nextName = "lk_next"

    /// Sends the visitor to log in, remembering `wanted` (a path on this site) for after: in
    /// the `next` cookie, scoped to the login CGI, and in the login page's query.
    static func loginFirst(then wanted: String, message: String? = nil, locale: String, _ context: Context) -> Reply {
        let next = ("Set-Cookie", "\(nextName)=\(Escape.urlComponent(wanted)); Path=\(context.config.cgiPrefix)login; Max-Age=900; HttpOnly; SameSite=Lax\(context.request.isHTTPS ? "; Secure" : "")")
        return Reply(.redirect(to: context.pageURL("login", message: message, locale: locale) + "?next=" + Escape.urlComponent(wanted), headers: [next]))
    }

    /// `target` when it is a path on this site (never another origin), else nil.
    static func sameSitePath(_ target: String?, _ config: SiteConfig) -> String? {
        guard let target, target.hasPrefix(config.rootPath), !target.hasPrefix("//"), !target.includes("\\"),
              !target.includes("://"), !target.hasControlCharacters, target.utf8.count <= 512 else { return nil }
        return target
    }
}
