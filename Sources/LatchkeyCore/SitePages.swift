/// The static pages and their outcome variants: the one list the generator renders from and
/// the CGIs redirect to, so a redirect can never name a page that was not built.
public enum SitePages {
    /// Every page of SPEC §3, by name (the file is `NAME.html`).
    public static let names = ["login", "forgot", "forgot-sent", "reset", "reset-done", "expired",
                               "account", "account-done"]

    /// An outcome message shown on a page, and how it is styled.
    public struct Message: Sendable, Equatable {
        /// The key under `messages` in the locale table.
        public let key: String
        /// `error`, `info` or `success`.
        public let kind: String
    }

    /// Messages each page can show; each gets its own static variant so no script is needed.
    public static let messages: [String: [Message]] = [
        "login": [Message(key: "invalid_login", kind: "error"), Message(key: "signed_out", kind: "info"),
                  Message(key: "session_expired", kind: "info")],
        "forgot": [Message(key: "invalid_email", kind: "error")],
        "reset": policyMessages,
        "account": [Message(key: "must_change", kind: "info"), Message(key: "wrong_current", kind: "error"),
                    Message(key: "login_required", kind: "info"), Message(key: "no_access", kind: "info")] + policyMessages,
    ]

    static let policyMessages = ["too_short", "too_long", "mismatch", "same_as_email", "too_common"].map { Message(key: $0, kind: "error") }

    /// Statuses that get a branded error page, `error-STATUS.html`.
    public static let errorStatuses = [400, 403, 404, 405, 411, 413, 415, 429, 500, 503]

    /// The file name of `page`, or of its variant showing `message`.
    public static func fileName(_ page: String, message: String? = nil) -> String {
        guard let message else { return page + ".html" }
        return page + "." + message.replacingUnderscores + ".html"
    }

    /// The URL path of a page in `locale` (the default locale lives at the root).
    public static func path(_ page: String, message: String? = nil, locale: String, config: SiteConfig) -> String {
        folder(locale: locale, config: config) + fileName(page, message: message)
    }

    /// The URL path of `locale`'s folder: the root for the default locale, `/LOCALE/` for others.
    public static func folder(locale: String, config: SiteConfig) -> String {
        locale == config.defaultLocale ? config.rootPath : config.rootPath + locale + "/"
    }
}

extension String {
    var replacingUnderscores: String { String(map { $0 == "_" ? "-" : $0 }) }
}
