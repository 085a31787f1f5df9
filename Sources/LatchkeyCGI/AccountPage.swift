import LatchkeyAccounts
import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// The pages the account CGIs render per request, in the site's theme (`pages/settings.html`,
/// `pages/confirm-email.html`) with the same values as the static pages.
enum AccountPage {
    /// Messages the settings page shows, by key, and whether each is an error.
    static let messages: [String: Bool] = ["profile_saved": false, "profile_invalid": true, "email_sent": false, "email_invalid": true,
                                           "email_taken": true, "email_same": true, "email_throttled": true, "wrong_current": true, "sessions_ended": false]

    /// `GET account`: the settings of the person logged in; anyone else goes to log in and
    /// comes back here after.
    static func show(_ context: Context) throws -> Reply {
        let config = context.config, query = try context.request.query()
        guard let live = try SessionCookie.live(context) else {
            return SessionCookie.loginFirst(then: config.cgiPrefix + "account", locale: context.locale(query["lang"]), context)
        }
        let services = try context.services(), person = live.person
        let locale = context.locale(query["lang"] ?? (person.locale.isEmpty ? nil : person.locale))
        let grants = try PersonFile.grants(of: person, db: services.db).filter { $0.revokedAt == nil }
        let devices = try AccountSettings.devices(of: live, services: services, now: context.now)
        let values: [String: TemplateValue] = [
            "person": ["name": .string(person.name), "email": .string(person.email), "locale": .string(person.locale)],
            "grants": .list(grants.map { ["name": .string($0.name), "since": .string(day($0.grantedAt))] }),
            "has_access": .bool(!grants.isEmpty),
            "devices": .list(devices.map {
                ["browser": .string($0.browser), "system": .string($0.system), "address": .string($0.remoteAddr),
                 "last_seen": .string(Clock.readable($0.lastSeenAt)), "this_one": .bool($0.isThisOne)]
            }),
            "other_devices": .bool(devices.contains { !$0.isThisOne }),
        ]
        let message = query["m"].flatMap { key in messages[key].map { (key, $0) } }
        return try render("settings", values, locale: locale, context: context, message: message) { code in
            config.cgiPrefix + "account?lang=" + code
        } languages: { names, current in
            .list(names.map { ["code": .string($0.code), "name": .string($0.name),
                               "selected": .bool($0.code == (person.locale.isEmpty ? current : person.locale))] })
        }
    }

    /// Back to the settings page with message `key`.
    static func back(_ context: Context, _ key: String, _ locale: String) -> Reply {
        Reply(.redirect(to: context.config.origin + context.config.cgiPrefix + "account?m=" + key + "&lang=" + locale))
    }

    /// Renders `pages/NAME.html` in `locale`, with `message` (a key under `settings.messages`),
    /// its language links pointing at `link(code)` and its language choices from `languages`.
    static func render(_ name: String, _ values: [String: TemplateValue], locale: String, context: Context, status: Int = 200,
                       message: (key: String, isError: Bool)? = nil, link: (String) -> String,
                       languages: ([(code: String, name: String)], String) -> TemplateValue = { _, _ in .list([]) }) throws -> Reply {
        let config = context.config, folder = config.resolve(config.localesDir)
        // Only this page's language is read whole; the others are named from their files' first key.
        let table = try LocaleTable.load(code: config.locales.contains(locale) ? locale : config.defaultLocale, folder: folder, check: false)
        guard case var .dict(shared) = PageContext(config: config, tables: [table], year: Clock.year(of: context.now)).page(name, table: table) else {
            throw HTTPError(500, "page context")
        }
        let names = config.locales.map { code in (code, code == table.code ? table.string("language_name") ?? code
                                                                            : LocaleTable.languageName(code: code, folder: folder) ?? code) }
        shared["multilingual"] = .bool(config.locales.count > 1)
        shared["locales"] = .list(names.map { ["code": .string($0.0), "name": .string($0.1), "href": .string(link($0.0)), "current": .bool($0.0 == table.code)] })
        shared["languages"] = languages(names, table.code)
        if let message, let text = table.string("settings.messages." + message.key) {
            shared["message"] = ["kind": .string(message.isError ? "error" : "success"), "is_error": .bool(message.isError), "text": .string(text)]
        }
        let html = try TemplateSet(folder: config.resolve(config.templates)).renderPage(name, .dict(shared).merging(values))
        return Reply(.page(status: status, html: html))
    }

    /// `2026-03-14`: the date a grant began.
    static func day(_ seconds: Int64) -> String { String(Clock.iso8601(seconds).prefix(10)) }
}
