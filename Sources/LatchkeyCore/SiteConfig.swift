
/// The site owner's `latchkey.json`, with every default filled in and every path absolute.
public struct SiteConfig: Sendable {
    /// The file this config came from.
    public var file: String
    /// The folder of `file`; relative paths in the config resolve against it.
    public var folder: String

    /// `site_name`: the site's display name, on every page and email.
    public var siteName = "Latchkey"
    /// Scheme, host and optional path prefix of the public site; the only source of links in mail.
    public var baseURL = "http://127.0.0.1:8080"
    /// Languages to render; the first is the default, rendered at the root of the output.
    public var locales = ["en"]
    /// `database`: the SQLite file.
    public var database = "var/latchkey.sqlite3"
    /// `key_file`: the site secret, readable only by the web server's user.
    public var keyFile = "var/secret.key"
    /// `output`: where `build` writes the pages; the document root.
    public var output = "public"
    /// `templates`: the folder of page and email templates.
    public var templates = "templates"
    /// `locales_dir`: the folder of string tables, one per language.
    public var localesDir = "locales"
    /// `assets`: the folder of files copied into the site's `assets/`.
    public var assets = "assets"
    /// `cgi_prefix`: the URL path the CGI endpoints are served under.
    public var cgiPrefix = "/cgi-bin/"
    /// `members_path`: the URL path of the members area.
    public var membersPath = "/members/"
    /// The members-only files, served by the `members` gate CGI; outside the document root.
    public var membersDir = "members"
    /// `mail`: where mail goes and whom it is from.
    public var mail = Mail()
    /// `reset`: how long reset and welcome links work.
    public var reset = Reset()
    /// `session`: how long a login lasts.
    public var session = Session()
    /// `password`: length bounds and Argon2id cost.
    public var password = Password()
    /// `throttle`: limits on reset requests and failed logins.
    public var throttle = Throttle()
    /// `brand`: logo, colours, stylesheet and footer.
    public var brand = Brand()
    /// Whether `access grant` sends the welcome email by default.
    public var welcomeOnGrant = true
    /// `admin`: the staff console.
    public var admin = Admin()
    /// `api`: the integration API's limits.
    public var api = API()
    /// `stripe`: the Stripe webhook endpoint's secret and offer map.
    public var stripe = Stripe()
    /// `webhooks`: where outbound events go.
    public var webhooks: [Webhook] = []
    /// `fastcgi`: the persistent workers' limits.
    public var fastcgi = FastCGI()
    /// `members_sendfile`: whether the members gate hands files back to the web server.
    public var membersSendfile = MembersSendfile.off

    /// Where mail goes and whom it is from.
    public struct Mail: Sendable {
        /// `mail.transport`: `maildir:PATH` or `sendmail:PATH`.
        public var transport = "maildir:var/mail"
        /// `mail.from`: the From header of every email.
        public var from = "Latchkey <no-reply@localhost>"
        /// `mail.reply_to`: an optional Reply-To address; empty for none.
        public var replyTo = ""
        /// Longest a transport may take before the send counts as failed.
        public var timeout = TimeSpan(seconds: 30)
        /// Wait before the first retry of a failed message; doubles each time, at most 6 hours.
        public var retryAfter = TimeSpan(seconds: 60)
    }

    /// Reset-link rules (SPEC §5).
    public struct Reset: Sendable {
        /// `reset.link_lifetime`: how long a reset link works.
        public var linkLifetime = TimeSpan(seconds: 24 * 3600)
        /// `reset.welcome_link_lifetime`: how long the link in a welcome email works.
        public var welcomeLinkLifetime = TimeSpan(seconds: 7 * 86400)
        /// `reset.reuse_window`: asking again within it re-sends the same link.
        public var reuseWindow = TimeSpan(seconds: 16 * 3600)
    }

    /// Login session lifetimes.
    public struct Session: Sendable {
        /// `session.idle_timeout`: a session unused this long ends.
        public var idleTimeout = TimeSpan(seconds: 2 * 3600)
        /// `session.absolute_timeout`: no session lives longer than this.
        public var absoluteTimeout = TimeSpan(seconds: 30 * 86400)
    }

    /// Password policy and hashing cost.
    public struct Password: Sendable {
        /// `password.min_length`: the shortest password accepted.
        public var minLength = 8
        /// `password.max_length`: the longest password accepted.
        public var maxLength = 128
        /// `password.argon2_iterations` and `argon2_memory_mib`: the hashing cost.
        public var argon2 = Argon2Parameters()
        /// `password.blocklist`: `builtin`, `off`, or a file of one password a line.
        public var blocklist = "builtin"
    }

    /// A count allowed per window.
    public struct Limit: Sendable, Equatable {
        /// `count`: how many are allowed in one window.
        public var count: Int
        /// `window`: the span the count is measured over.
        public var window: TimeSpan
    }

    /// Throttle limits for the endpoints that take guesses or send mail.
    public struct Throttle: Sendable {
        /// `throttle.forgot_per_address`: reset requests per email address.
        public var forgotPerAddress = Limit(count: 5, window: TimeSpan(seconds: 3600))
        /// `throttle.forgot_per_ip`: reset requests per client IP.
        public var forgotPerIP = Limit(count: 30, window: TimeSpan(seconds: 3600))
        /// `throttle.login_failures_per_account`: failed logins per account before it locks.
        public var loginFailuresPerAccount = Limit(count: 10, window: TimeSpan(seconds: 900))
        /// `throttle.login_failures_per_ip`: failed logins per client IP.
        public var loginFailuresPerIP = Limit(count: 50, window: TimeSpan(seconds: 900))
    }

    /// A link in the page footer.
    public struct FooterLink: Sendable, Equatable {
        /// `label`: the link's text.
        public var label: String
        /// `href`: where the link points.
        public var href: String
    }

    /// The site's look.
    public struct Brand: Sendable {
        /// `brand.logo`: the logo file, copied into `assets/`; empty for none.
        public var logo = ""
        /// `brand.primary_color`: the colour of buttons and links.
        public var primaryColor = "#4f46e5"
        /// `brand.background_color`: the page background.
        public var backgroundColor = "#ffffff"
        /// `brand.css`: an extra stylesheet, copied to `assets/custom.css` and loaded last.
        public var css = ""
        /// `brand.support_email`: the address shown in page and email footers.
        public var supportEmail = ""
        /// `brand.footer_links`: links shown in the page footer.
        public var footerLinks: [FooterLink] = []
        /// `brand.favicon`: an `.svg`, `.png` or `.ico` file for `/favicon.ico`; empty for the logo.
        public var favicon = ""

        /// The file `favicon.ico` is made from: `favicon`, else the logo when it is an icon format;
        /// empty for neither (a placeholder is made).
        public var faviconSource: String {
            let source = favicon.isEmpty ? logo : favicon
            return FaviconKind(path: source) == nil ? "" : source
        }

        /// The formats `favicon.ico` can be made from, by file name.
        public enum FaviconKind: Sendable {
            case svg, png, ico

            /// The kind of the file at `path`; nil for other formats (JPEG, WebP…).
            public init?(path: String) {
                let lower = path.lowercased()
                if lower.hasSuffix(".svg") { self = .svg } else if lower.hasSuffix(".png") { self = .png }
                else if lower.hasSuffix(".ico") { self = .ico } else { return nil }
            }
        }

        /// True when `favicon.ico` holds SVG, which the web server must send as `image/svg+xml`.
        public var faviconIsSVG: Bool { faviconSource.isEmpty || FaviconKind(path: faviconSource) == .svg }
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
        return parts.count >= 3 ? String(parts[0]) + "//" + String(parts[2]) : baseURL
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
