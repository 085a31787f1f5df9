import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// One console request: the CGI context, the open site, the staff session (if any), and the
/// staff member's language. Pages are rendered per request from `templates/admin/`.
struct Console {
    /// The console's own Content-Security-Policy: the CGIs' one, plus the site's own scripts
    /// (the Copy Link button).
    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    let context: Context
    let services: Services
    let session: StaffSessions.Live?
    let table: LocaleTable
    let tables: [LocaleTable]

    /// The console's URL path, `{cgi_prefix}admin`.
    var base: String { context.config.cgiPrefix + "admin" }
    var config: SiteConfig { context.config }
    var now: Int64 { context.now }
    /// The audit trail's actor for the staff member, with their address.
    var actor: Support.Actor { Support.Actor(session?.staff.actor ?? "staff:?", remoteAddr: context.request.remoteAddr) }

    /// The cookie's name: `__Host-` under HTTPS, which browsers accept only from a secure origin.
    static func cookieName(_ request: CGIRequest) -> String { request.isHTTPS ? "__Host-lk_staff" : "lk_staff" }

    /// Opens the site and finds the staff session the request carries.
    init(_ context: Context) throws {
        self.context = context
        let services = try context.services()
        self.services = services
        var found: StaffSessions.Live?
        if let cookie = context.request.cookie(Console.cookieName(context.request)) {
            found = try StaffSessions(db: services.db, key: services.key, config: context.config).find(cookie, now: context.now)
        }
        session = found
        tables = try SiteSource.loadTables(config: context.config)
        table = SiteSource.table(found?.staff.locale ?? "", in: tables)
    }

    /// The logged-in staff member, or a redirect to the login page (as an error, so every page
    /// handler starts with it).
    func staff() throws -> StaffMember {
        guard let session else { throw ConsoleRedirect(path: "/login") }
        return session.staff
    }

    /// Refuses with 403 unless the staff member's role allows `action`.
    func require(_ action: ConsoleAction) throws {
        let member = try staff()
        guard action.allowed(for: member.role) else {
            throw HTTPError(403, "\(member.actor) (\(member.role.rawValue)) may not \(action.rawValue)")
        }
    }

    /// Checks a POST: same origin, and the session's CSRF token in `csrf`.
    func checkPost(_ form: FormData) throws {
        try context.request.requireSameOrigin(config)
        guard let session else { throw ConsoleRedirect(path: "/login") }
        guard Sodium.constantTimeEqual(Array((form["csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
            throw HTTPError(403, "console POST without its CSRF token")
        }
    }

    /// Step-up for a sensitive action: true when it needs none, a code was given in the last
    /// `admin.step_up_window`, or `form`'s `code` is a good one now.
    func steppedUp(_ action: ConsoleAction, _ form: FormData) throws -> Bool {
        guard action.needsStepUp, let session else { return true }
        return try StaffLogin.stepUp(session, code: form["code"] ?? "", services: services, now: now)
    }

    /// True when a sensitive action's form must ask for a code.
    var stepUpDue: Bool { session.map { now - $0.stepUpAt >= config.admin.stepUpWindow.seconds } ?? true }

    /// A page from `templates/admin/NAME.html` with `values` over the shared ones.
    func page(_ name: String, _ values: [String: TemplateValue], status: Int = 200) throws -> Reply {
        var shared: [String: TemplateValue] = [
            "lang": .string(table.code), "site_name": .string(config.siteName), "assets": .string(config.rootPath + "assets/"),
            "base": .string(base), "t": table.strings, "page": .string(name),
        ]
        if let session {
            let role = session.staff.role
            shared["staff"] = ["email": .string(session.staff.email), "role": .string(role.rawValue),
                               "is_owner": .bool(role == .owner), "csrf": .string(session.csrf)]
            shared["locales"] = .list(tables.map { ["code": .string($0.code), "name": .string($0.string("language_name") ?? $0.code),
                                                    "current": .bool($0.code == table.code)] })
        }
        let html = try TemplateSet(folder: config.resolve(config.templates)).renderConsole(name, .dict(shared).merging(values))
        return Reply(.page(status: status, html: html, headers: [("Content-Security-Policy", Console.contentSecurityPolicy)]))
    }

    /// A redirect to a console path (post/redirect/get), with an outcome message key.
    func redirect(_ path: String, message: String? = nil) -> Reply {
        Reply(.redirect(to: config.origin + base + path + (message.map { (path.includes("?") ? "&" : "?") + "m=" + $0 } ?? "")))
    }

    /// The outcome message named by the query's `m`, as a page's `message`, or false: the
    /// console's own (`admin.messages.*`; the ones ending in `refused` or `failed` are errors),
    /// or a password rule's (`messages.*`, always an error).
    func message(_ query: FormData) -> TemplateValue {
        guard let key = query["m"] else { return false }
        if let text = table.string("admin.messages." + key) {
            return ["text": .string(text), "is_error": .bool(key.hasSuffix("refused") || key.hasSuffix("failed"))]
        }
        guard let rule = table.string("messages." + key) else { return false }
        return ["text": .string(PageContext.policyText(rule, config: config)), "is_error": true]
    }

    /// A time for a page: `2026-12-01 20:27 UTC`.
    static func when(_ seconds: Int64?) -> TemplateValue { .string(seconds.map(Clock.readable) ?? "") }
}

/// Sends the browser to a console path instead of answering (not logged in, or timed out).
struct ConsoleRedirect: Error {
    let path: String
}
