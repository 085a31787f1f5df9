
extension SiteConfig {
    /// Reads and checks `file`; any problem is one `CoreError.config` that names the key.
    public static func load(file: String) throws -> SiteConfig {
        var config = SiteConfig(file: file)
        let root = ConfigReader(value: try JSONValue.load(path: file), path: "", file: file)
        try root.allow(["site_name", "base_url", "locales", "database", "key_file", "output", "templates",
                        "locales_dir", "assets", "cgi_prefix", "members_path", "members_dir", "mail", "reset", "session",
                        "password", "throttle", "brand", "welcome_on_grant", "admin", "api", "stripe", "webhooks",
                        "fastcgi", "members_sendfile"])
        config.siteName = try root.string("site_name", default: config.siteName, nonEmpty: true)
        config.baseURL = try root.string("base_url", default: config.baseURL) { url in
            (url.hasPrefix("http://") || url.hasPrefix("https://")) && !url.includes("?") && !url.includes("#")
                && url.utf8.split(separator: UInt8(ascii: "/")).count >= 2 && !url.includes(" ")
        } reason: { "must be an absolute http:// or https:// URL without query or fragment" }
        config.locales = try root.strings("locales", default: config.locales)
        guard !config.locales.isEmpty else { throw root.error("locales", "must name at least one language") }
        for code in config.locales where !SiteConfig.isLocaleCode(code) {
            throw root.error("locales", "'\(code)' is not a language code like en, fr or pt-BR")
        }
        config.database = try root.string("database", default: config.database, nonEmpty: true)
        config.keyFile = try root.string("key_file", default: config.keyFile, nonEmpty: true)
        config.output = try root.string("output", default: config.output, nonEmpty: true)
        config.templates = try root.string("templates", default: config.templates, nonEmpty: true)
        config.localesDir = try root.string("locales_dir", default: config.localesDir, nonEmpty: true)
        config.assets = try root.string("assets", default: config.assets, nonEmpty: true)
        let urlPath: (String) -> Bool = { $0.hasPrefix("/") && $0.hasSuffix("/") && !$0.includes("..") && !$0.includes(" ") }
        config.cgiPrefix = try root.string("cgi_prefix", default: config.cgiPrefix, valid: urlPath) { "must be a URL path that starts and ends with /" }
        config.membersPath = try root.string("members_path", default: config.membersPath, valid: urlPath) { "must be a URL path that starts and ends with /" }
        config.membersDir = try root.string("members_dir", default: config.membersDir, nonEmpty: true)
        config.welcomeOnGrant = try root.bool("welcome_on_grant", default: config.welcomeOnGrant)

        let mail = try root.object("mail")
        try mail.allow(["transport", "from", "reply_to", "timeout", "retry_after"])
        config.mail.transport = try mail.string("transport", default: config.mail.transport) {
            ($0.hasPrefix("maildir:") || $0.hasPrefix("sendmail:")) && $0.utf8.split(separator: UInt8(ascii: ":"), maxSplits: 1).count == 2
        } reason: { "must be maildir:PATH or sendmail:PATH" }
        config.mail.from = try mail.string("from", default: config.mail.from) { $0.includes("@") && !$0.hasControlCharacters }
            reason: { "must be an address like \"Acme <no-reply@example.com>\"" }
        config.mail.replyTo = try mail.string("reply_to", default: config.mail.replyTo) { !$0.hasControlCharacters }
            reason: { "must be one address" }
        config.mail.timeout = try mail.span("timeout", default: config.mail.timeout)
        config.mail.retryAfter = try mail.span("retry_after", default: config.mail.retryAfter)

        let reset = try root.object("reset")
        try reset.allow(["link_lifetime", "welcome_link_lifetime", "reuse_window"])
        config.reset.linkLifetime = try reset.span("link_lifetime", default: config.reset.linkLifetime)
        config.reset.welcomeLinkLifetime = try reset.span("welcome_link_lifetime", default: config.reset.welcomeLinkLifetime)
        config.reset.reuseWindow = try reset.span("reuse_window", default: config.reset.reuseWindow)
        guard config.reset.reuseWindow <= config.reset.linkLifetime else {
            throw reset.error("reuse_window", "must not be longer than reset.link_lifetime (\(config.reset.linkLifetime))")
        }

        let session = try root.object("session")
        try session.allow(["idle_timeout", "absolute_timeout"])
        config.session.idleTimeout = try session.span("idle_timeout", default: config.session.idleTimeout)
        config.session.absoluteTimeout = try session.span("absolute_timeout", default: config.session.absoluteTimeout)

        let password = try root.object("password")
        try password.allow(["min_length", "max_length", "argon2_iterations", "argon2_memory_mib", "blocklist"])
        config.password.blocklist = try password.string("blocklist", default: "builtin", nonEmpty: true)
        config.password.minLength = try password.int("min_length", default: 8, range: 8...1024)
        config.password.maxLength = try password.int("max_length", default: 128, range: config.password.minLength...4096)
        config.password.argon2.iterations = try password.int("argon2_iterations", default: 2, range: 1...64)
        config.password.argon2.memoryMiB = try password.int("argon2_memory_mib", default: 19, range: 1...4096)
        if config.password.argon2.memoryMiB < 19 {
            throw password.error("argon2_memory_mib", "must be at least 19 (OWASP's minimum for Argon2id)")
        }

        let throttle = try root.object("throttle")
        try throttle.allow(["forgot_per_address", "forgot_per_ip", "login_failures_per_account", "login_failures_per_ip"])
        config.throttle.forgotPerAddress = try throttle.limit("forgot_per_address", default: config.throttle.forgotPerAddress)
        config.throttle.forgotPerIP = try throttle.limit("forgot_per_ip", default: config.throttle.forgotPerIP)
        config.throttle.loginFailuresPerAccount = try throttle.limit("login_failures_per_account", default: config.throttle.loginFailuresPerAccount)
        config.throttle.loginFailuresPerIP = try throttle.limit("login_failures_per_ip", default: config.throttle.loginFailuresPerIP)

        try loadAdmin(root, into: &config)
        try loadIntegration(root, into: &config)
        try loadFastCGI(root, into: &config)

        let brand = try root.object("brand")
        try brand.allow(["logo", "primary_color", "background_color", "css", "support_email", "footer_links", "favicon"])
        config.brand.logo = try brand.string("logo", default: "")
        config.brand.favicon = try brand.string("favicon", default: "") { name in
            name.isEmpty || [".svg", ".png", ".ico"].contains { name.lowercased().hasSuffix($0) }
        } reason: { "must be an .svg, .png or .ico file" }
        config.brand.primaryColor = try brand.string("primary_color", default: config.brand.primaryColor) { Color(hex: $0) != nil }
            reason: { "must be a colour like #4f46e5" }
        config.brand.backgroundColor = try brand.string("background_color", default: config.brand.backgroundColor) { Color(hex: $0) != nil }
            reason: { "must be a colour like #ffffff" }
        config.brand.css = try brand.string("css", default: "")
        config.brand.supportEmail = try brand.string("support_email", default: "") { $0.isEmpty || ($0.includes("@") && !$0.includes(" ")) }
            reason: { "must be an email address" }
        config.brand.footerLinks = try brand.list("footer_links").map { link in
            try link.allow(["label", "href"])
            return FooterLink(label: try link.string("label", default: "", nonEmpty: true),
                              href: try link.string("href", default: "", nonEmpty: true))
        }
        return config
    }

    static func isLocaleCode(_ code: String) -> Bool {
        // On bytes: only ASCII letters and digits qualify, so no character needs classifying.
        let parts = Array(code.utf8).split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts[0].count == 2 || parts[0].count == 3 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 8 && part.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
        }
    }
}
