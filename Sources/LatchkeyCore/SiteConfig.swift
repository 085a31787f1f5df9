import FoundationEssentials

/// The site owner's `latchkey.json`, with every default filled in and every path absolute.
public struct SiteConfig: Sendable {
    /// The file this config came from.
    public var file: String
    /// The folder of `file`; relative paths in the config resolve against it.
    public var folder: String

    public var siteName = "Latchkey"
    /// Scheme, host and optional path prefix of the public site; the only source of links in mail.
    public var baseURL = "http://127.0.0.1:8080"
    /// Languages to render; the first is the default, rendered at the root of the output.
    public var locales = ["en"]
    public var database = "var/latchkey.sqlite3"
    public var keyFile = "var/secret.key"
    public var output = "public"
    public var templates = "templates"
    public var localesDir = "locales"
    public var assets = "assets"
    public var cgiPrefix = "/cgi-bin/"
    public var membersPath = "/members/"
    /// The members-only files, served by the `members` gate CGI; outside the document root.
    public var membersDir = "members"
    public var mail = Mail()
    public var reset = Reset()
    public var session = Session()
    public var password = Password()
    public var throttle = Throttle()
    public var brand = Brand()
    /// Whether `access grant` sends the welcome email by default.
    public var welcomeOnGrant = true

    /// Where mail goes and whom it is from.
    public struct Mail: Sendable {
        public var transport = "maildir:var/mail"
        public var from = "Latchkey <no-reply@localhost>"
        public var replyTo = ""
        /// Longest a transport may take before the send counts as failed.
        public var timeout = TimeSpan(seconds: 30)
        /// Wait before the first retry of a failed message; doubles each time, at most 6 hours.
        public var retryAfter = TimeSpan(seconds: 60)
    }

    /// Reset-link rules (SPEC §5).
    public struct Reset: Sendable {
        public var linkLifetime = TimeSpan(seconds: 24 * 3600)
        public var welcomeLinkLifetime = TimeSpan(seconds: 7 * 86400)
        public var reuseWindow = TimeSpan(seconds: 16 * 3600)
    }

    /// Login session lifetimes.
    public struct Session: Sendable {
        public var idleTimeout = TimeSpan(seconds: 2 * 3600)
        public var absoluteTimeout = TimeSpan(seconds: 30 * 86400)
    }

    /// Password policy and hashing cost.
    public struct Password: Sendable {
        public var minLength = 8
        public var maxLength = 128
        public var argon2 = Argon2Parameters()
    }

    /// A count allowed per window.
    public struct Limit: Sendable, Equatable {
        public var count: Int
        public var window: TimeSpan
    }

    /// Throttle limits for the endpoints that take guesses or send mail.
    public struct Throttle: Sendable {
        public var forgotPerAddress = Limit(count: 5, window: TimeSpan(seconds: 3600))
        public var forgotPerIP = Limit(count: 30, window: TimeSpan(seconds: 3600))
        public var loginFailuresPerAccount = Limit(count: 10, window: TimeSpan(seconds: 900))
        public var loginFailuresPerIP = Limit(count: 50, window: TimeSpan(seconds: 900))
    }

    /// A link in the page footer.
    public struct FooterLink: Sendable, Equatable {
        public var label: String
        public var href: String
    }

    /// The site's look.
    public struct Brand: Sendable {
        public var logo = ""
        public var primaryColor = "#4f46e5"
        public var backgroundColor = "#ffffff"
        public var css = ""
        public var supportEmail = ""
        public var footerLinks: [FooterLink] = []
    }

    /// A config with every default, as if read from `file`.
    public init(file: String) {
        self.file = file
        self.folder = Path.parent(of: file)
    }

    /// Absolute form of a config path.
    public func resolve(_ path: String) -> String { Path.join(folder, path) }

    /// The default locale.
    public var defaultLocale: String { locales[0] }

    /// The path part of `base_url`, ending in `/`: where the site's root is served.
    public var rootPath: String {
        let afterScheme = baseURL.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard afterScheme.count == 4 else { return "/" }
        let path = "/" + afterScheme[3]
        return path.hasSuffix("/") ? path : path + "/"
    }

    /// `base_url` without a trailing slash, for building absolute links.
    public var origin: String {
        let parts = baseURL.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        return parts.count >= 3 ? parts[0...2].joined(separator: "/") : baseURL
    }

    /// True when the public site is served over HTTPS.
    public var isHTTPS: Bool { baseURL.hasPrefix("https://") }

    /// The absolute URL of `path` under the site root (`path` has no leading slash).
    public func absoluteURL(_ path: String) -> String { origin + rootPath + path }

    /// Where a config is looked for: `--config`, else `$LATCHKEY_CONFIG`, else `./site/latchkey.json`.
    public static func locate(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return Path.absolute(explicit) }
        if let fromEnv = environment["LATCHKEY_CONFIG"], !fromEnv.isEmpty { return Path.absolute(fromEnv) }
        return Path.absolute("site/latchkey.json")
    }
}
