import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// The console's login, enrolment, logout and language choice.
enum ConsoleLogin {
    static func page(_ console: Console) throws -> Reply {
        if console.session != nil { return console.redirect("/") }
        let query = try console.context.request.query()
        return try console.page("login", ["message": console.message(query)])
    }

    static func submit(_ console: Console) throws -> Reply {
        try console.context.request.requireSameOrigin(console.config)
        let form = try console.context.form()
        let request = console.context.request
        guard let cookie = try StaffLogin.attempt(email: form["email"] ?? "", password: form["password"] ?? "", code: form["code"] ?? "",
                                                  remoteAddr: request.remoteAddr, services: console.services, now: console.now) else {
            return console.redirect("/login", message: "login_failed")
        }
        var reply = console.redirect("/")
        reply.response.headers.append(setCookie(cookie, console))
        return reply
    }

    static func enrolPage(_ console: Console) throws -> Reply {
        let query = try console.context.request.query()
        let token = query["token"] ?? ""
        guard let enrolment = try StaffLogin.enrolmentPage(token: token, services: console.services, now: console.now) else {
            return try console.page("enrol", ["expired": true, "message": false], status: 410)
        }
        let uri = TOTP.provisioningURI(secret: enrolment.secret, account: enrolment.staff.email, issuer: console.config.siteName)
        return try console.page("enrol", [
            "expired": false, "token": .string(token), "email": .string(enrolment.staff.email),
            "secret": .string(Base32.encode(enrolment.secret)), "codes": .list(enrolment.recoveryCodes.map { .string($0) }),
            "qr": .string(QRCode(uri)?.svg(title: console.table.string("admin.enrol.qr_title") ?? "QR code") ?? ""),
            "min": .string(String(console.config.password.minLength)), "max": .string(String(console.config.password.maxLength)),
            "message": console.message(query),
        ])
    }

    static func enrol(_ console: Console) throws -> Reply {
        try console.context.request.requireSameOrigin(console.config)
        let form = try console.context.form()
        let token = form["token"] ?? ""
        let outcome = try StaffLogin.completeEnrolment(token: token, password: form["new_password"] ?? "", confirmation: form["confirm_password"] ?? "",
                                                       code: form["code"] ?? "", remoteAddr: console.context.request.remoteAddr,
                                                       services: console.services, now: console.now)
        switch outcome {
        case let .done(cookie):
            var reply = console.redirect("/", message: "enrolled")
            reply.response.headers.append(setCookie(cookie, console))
            return reply
        case .expired:
            return try console.page("enrol", ["expired": true, "message": false], status: 410)
        case let .rejected(key):
            return console.redirect("/enrol?token=" + Escape.urlComponent(token), message: key)
        }
    }

    static func logout(_ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        if let session = console.session {
            try console.services.db.write {
                try StaffSessions(db: console.services.db, key: console.services.key, config: console.config).end(id: session.sessionID)
                try console.services.db.audit(AuditEvent(actor: session.staff.actor, action: "staff.logout", subject: session.staff.email,
                                                         remoteAddr: console.context.request.remoteAddr), now: console.now)
            }
        }
        var reply = console.redirect("/login", message: "signed_out")
        reply.response.headers.append(setCookie("", console, maxAge: 0))
        return reply
    }

    static func chooseLocale(_ console: Console) throws -> Reply {
        let form = try console.context.form()
        try console.checkPost(form)
        let member = try console.staff()
        let code = form["locale"] ?? ""
        guard console.config.locales.contains(code) else { throw HTTPError(400, "no such language") }
        try console.services.db.write {
            try console.services.db.execute("UPDATE staff SET locale = ? WHERE id = ?", [.text(code), .int(member.id)])
        }
        return console.redirect("/")
    }

    /// `lk_staff`: `HttpOnly; SameSite=Strict; Path=/`, and `Secure` with `__Host-` under HTTPS.
    static func setCookie(_ value: String, _ console: Console, maxAge: Int64? = nil) -> (String, String) {
        let request = console.context.request
        return SessionCookie.header(named: Console.cookieName(request), value, maxAge: maxAge ?? console.config.admin.absoluteTimeout.seconds,
                                    sameSite: "Strict", request)
    }
}
