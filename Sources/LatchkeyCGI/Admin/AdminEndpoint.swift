import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `admin/…`: the staff console (SPEC §9). The path after `admin` picks the page (GET) or the
/// action (POST); every action is checked here for the staff member's role, the record it
/// names, the CSRF token and, where sensitive, a fresh second-factor code.
enum AdminEndpoint {
    /// Longest console path looked at: `/people/ID/ACTION` is well under it.
    static let maxPathBytes = 200

    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "POST"])
        guard context.config.admin.allows(context.request.remoteAddr) else {
            throw HTTPError(403, "console refused to \(context.request.remoteAddr) (admin.allow_from)")
        }
        let path = context.request.pathInfo.isEmpty ? "/" : context.request.pathInfo
        guard path.utf8.count <= maxPathBytes, !path.hasControlCharacters else { throw HTTPError(404, "no console page") }
        let console = try Console(context)
        do {
            return try route(path.split(separator: "/").map(String.init), console)
        } catch let redirect as ConsoleRedirect {
            // Not logged in (or the session timed out): a page goes to the login form; a POST
            // is refused, so nothing it carried is acted on after the login.
            if context.request.method == "POST" && !["/login", "/enrol"].contains(path) {
                throw HTTPError(403, "console POST without a live staff session")
            }
            return console.redirect(redirect.path, message: console.session == nil && context.request.cookie(Console.cookieName(context.request)) != nil ? "session_ended" : nil)
        }
    }

    static func route(_ parts: [String], _ console: Console) throws -> Reply {
        let post = console.context.request.method == "POST"
        /// The segments `*` stood for when `parts` is `pattern`, else nil.
        func match(_ pattern: String...) -> [String]? {
            guard parts.count == pattern.count else { return nil }
            var captured: [String] = []
            for (part, want) in zip(parts, pattern) {
                if want == "*" { captured.append(part) } else if part != want { return nil }
            }
            return captured
        }
        if post {
            if match("login") != nil { return try ConsoleLogin.submit(console) }
            if match("enrol") != nil { return try ConsoleLogin.enrol(console) }
            if match("logout") != nil { return try ConsoleLogin.logout(console) }
            if match("locale") != nil { return try ConsoleLogin.chooseLocale(console) }
            if match("people") != nil { return try PeoplePages.create(console) }
            if match("people", "bulk-reset") != nil { return try PeoplePages.bulkReset(console) }
            if match("offers") != nil { return try ConsolePages.addOffer(console) }
            if match("staff") != nil { return try StaffPages.add(console) }
            if let ids = match("staff", "*", "*") { return try StaffPages.perform(ids[1], ids[0], console) }
        } else {
            if match("login") != nil { return try ConsoleLogin.page(console) }
            if match("enrol") != nil { return try ConsoleLogin.enrolPage(console) }
            if parts.isEmpty || match("people") != nil { return try PeoplePages.search(console) }
            if match("people", "new") != nil { return try PeoplePages.newPerson(console) }
            if let ids = match("people", "*") { return try PeoplePages.record(try person(ids[0], console), console) }
            if match("mail") != nil { return try ConsolePages.failedMail(console) }
            if match("audit") != nil { return try ConsolePages.audit(console) }
            if match("offers") != nil { return try ConsolePages.offers(console) }
            if match("staff") != nil { return try StaffPages.list(console) }
            if let ids = match("staff", "*", "*") { return try StaffPages.confirm(ids[1], ids[0], console) }
        }
        if let ids = match("people", "*", "*") {
            guard let action = ConsoleAction.personActions[ids[1]] else { throw HTTPError(404, "no console action \(ids[1].prefix(40))") }
            let person = try person(ids[0], console)
            return post ? try PersonActions.perform(action, person, console) : try PersonActions.confirm(action, person, console)
        }
        throw HTTPError(404, "no console page \(parts.joined(separator: "/").prefix(80))")
    }

    /// The person with row id `text`; 404 for anything else (not a number, nobody, too long).
    static func person(_ text: String, _ console: Console) throws -> Person {
        _ = try console.staff()
        guard text.utf8.count <= 19, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let id = Int64(text),
              let person = try console.services.db.person(id: id) else { throw HTTPError(404, "no person \(text.prefix(40))") }
        return person
    }
}
