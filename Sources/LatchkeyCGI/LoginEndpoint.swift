import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `POST login`: email + password → a session, then the members area (or the page that sent
/// the person to log in, or the account page when a temporary password must be changed or the
/// person holds no active access).
enum LoginEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["POST"])
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        let locale = context.locale(form["locale"])
        let services = try context.services()
        let outcome = try Login.attempt(email: form["email"] ?? "", password: form["password"] ?? "",
                                        remoteAddr: context.request.remoteAddr, userAgent: context.request.userAgent,
                                        services: services, now: context.now)
        guard case let .success(cookie, mustChange, hasAccess) = outcome else {
            return Reply(.redirect(to: context.pageURL("login", message: "invalid_login", locale: locale)))
        }
        let clearNext = ("Set-Cookie", "\(SessionCookie.nextName)=; Path=\(context.config.cgiPrefix)login; Max-Age=0; HttpOnly; SameSite=Lax")
        let target: String
        if mustChange {
            target = context.pageURL("account", message: "must_change", locale: locale)
        } else if !hasAccess {
            target = context.pageURL("account", message: "no_access", locale: locale)
        } else {
            let next = SessionCookie.sameSitePath(form["next"] ?? context.request.cookie(SessionCookie.nextName).map(percentDecoded), context.config)
            target = context.config.origin + (next ?? context.config.membersPath)
        }
        return Reply(.redirect(to: target, headers: [SessionCookie.set(cookie, context), clearNext]))
    }

    static func percentDecoded(_ text: String) -> String {
        (try? FormData.decode(Array(text.utf8)[...])) ?? ""
    }
}

/// `POST logout`: ends the session on the server, so a copied cookie stops working too.
enum LogoutEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["POST"])
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        if let cookie = context.request.cookie(SessionCookie.name(context.request)) {
            let services = try context.services()
            if let live = try SessionCookie.live(context) {
                try services.db.write {
                    try services.db.execute("DELETE FROM session WHERE id = ?", [.int(live.sessionID)])
                    try services.db.audit(.init(actor: "web", action: "logout", personID: live.person.id, subject: live.person.email,
                                                remoteAddr: context.request.remoteAddr), now: context.now)
                }
            } else {
                try services.db.write { try Sessions(db: services.db, key: services.key, config: context.config).end(cookie) }
            }
        }
        return Reply(.redirect(to: context.pageURL("login", message: "signed_out", locale: context.locale(form["locale"])),
                               headers: [SessionCookie.clear(context)]))
    }
}

/// `GET session`: 204 when the request carries a session that may read the members area,
/// 401 otherwise. For nginx `auth_request`; no hashing, and at most a rare write.
enum SessionEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "HEAD"])
        // A FastCGI authorizer (lighttpd, Apache): 200 lets the server send the file, and any
        // other answer goes to the visitor, so it is the members gate's own redirect.
        // mod_fcgid's access checker turns any refusal into a 401, whose error document is this
        // endpoint again: there it gives the refusal itself (or, had the session come alive
        // since, the page), so the checker's own refusal carries nothing to be sent twice.
        let request = context.request
        if request.isAuthorizer || request.redirectStatus == "401" {
            let wanted = SessionCookie.sameSitePath(request.requestURI, context.config) ?? context.config.membersPath
            let session = try SessionCookie.live(context)
            var yes = CGIResponse(status: 200)
            yes.isPage = false  // the server copies a yes's headers onto the file it sends
            guard let refused = SessionCookie.refuseMembers(session, then: wanted, context) else {
                guard request.isAuthorizer else { return Reply(.redirect(to: context.config.origin + wanted)) }
                // mod_authnz_fcgi makes the person's id REMOTE_USER (its UserExpr), for the log.
                if request.apacheRole == "AUTHENTICATOR" { yes.headers.append(("Variable-LATCHKEY_PERSON", String(session?.person.id ?? 0))) }
                return Reply(yes)
            }
            if request.apacheRole == "ACCESS_CHECKER" {
                var no = CGIResponse(status: 401)
                no.isPage = false
                return Reply(no)
            }
            return refused
        }
        guard let live = try SessionCookie.live(context), SessionCookie.admitsMembers(live) else {
            return Reply(CGIResponse(status: 401))
        }
        return Reply(CGIResponse(status: 204))
    }
}
