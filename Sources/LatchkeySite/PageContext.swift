import LatchkeyCore

/// Builds what a page or email template sees, from the config and one locale table.
public struct PageContext {
    /// The site config.
    public let config: SiteConfig
    /// Every configured locale's table, the default first.
    public let tables: [LocaleTable]
    /// The year printed in footers.
    public let year: String

    /// A context builder for `config` with `tables` loaded.
    public init(config: SiteConfig, tables: [LocaleTable], year: String) {
        self.config = config
        self.tables = tables
        self.year = year
    }

    /// The values shared by every page in `table`'s language.
    public func page(_ name: String, table: LocaleTable, message: SitePages.Message? = nil) -> TemplateValue {
        let assets = config.rootPath + "assets/"
        var values: [String: TemplateValue] = [
            "lang": .string(table.code),
            "dir": .string(PageContext.rightToLeft.contains(String(table.code.prefix(2))) ? "rtl" : "ltr"),
            "site_name": .string(config.siteName),
            "support_email": .string(config.brand.supportEmail),
            "root": .string(config.rootPath),
            "home": .string(SitePages.folder(locale: table.code, config: config)),
            "cgi": .string(config.cgiPrefix),
            "assets": .string(assets),
            "logo": .string(config.brand.logo.isEmpty ? "" : assets + Path.basename(config.brand.logo)),
            "page": .string(name),
            "members": .string(config.membersPath),
            "year": .string(year),
            "multilingual": .bool(tables.count > 1),
            "locales": .list(tables.map { other in
                [
                    "code": .string(other.code),
                    "name": .string(other.string("language_name") ?? other.code),
                    "href": .string(SitePages.path(name, locale: other.code, config: config)),
                    "current": .bool(other.code == table.code),
                ]
            }),
            "footer_links": .list(config.brand.footerLinks.map { ["label": .string($0.label), "href": .string($0.href)] }),
            "t": table.strings,
        ]
        if let message {
            var text = table.string("messages." + message.key).map(policyText) ?? ""
            // A message may have a `_help` sentence naming the support address; only when there is one.
            if !config.brand.supportEmail.isEmpty, let help = table.string("messages." + message.key + "_help") {
                text += " " + help.replacingAll("{support_email}", with: config.brand.supportEmail)
            }
            values["message"] = ["kind": .string(message.kind), "is_error": .bool(message.kind == "error"), "text": .string(text)]
        }
        return .dict(values)
    }

    /// The values an email sees, before the per-message ones (`name`, `link`, …) are laid over.
    public func email(table: LocaleTable) -> TemplateValue {
        let primary = Color(hex: config.brand.primaryColor)
        return [
            "lang": .string(table.code),
            "site_name": .string(config.siteName),
            "support_email": .string(config.brand.supportEmail),
            "base_url": .string(config.baseURL),
            "login_url": .string(config.origin + SitePages.path("login", locale: table.code, config: config)),
            "logo_url": .string(config.brand.logo.isEmpty ? "" : config.absoluteURL("assets/" + Path.basename(config.brand.logo))),
            "primary_color": .string(config.brand.primaryColor),
            "primary_text_color": .string(primary?.readableText ?? "#ffffff"),
            "background_color": .string(config.brand.backgroundColor),
            "t": table.strings,
        ]
    }

    /// "24 hours", "7 jours": a span in words of `table`'s language.
    public static func words(for span: TimeSpan, table: LocaleTable) -> String {
        let (count, unit) = span.largestUnit
        let key = "units." + unit + (count == 1 ? "" : "s")
        return "\(count) " + (table.string(key) ?? unit + (count == 1 ? "" : "s"))
    }

    /// Policy messages may say `{min}` and `{max}`; they are filled from the config.
    func policyText(_ text: String) -> String { PageContext.policyText(text, config: config) }

    /// `text` with `{min}` and `{max}` filled from `config`'s password bounds.
    public static func policyText(_ text: String, config: SiteConfig) -> String {
        text.replacingAll("{min}", with: String(config.password.minLength))
            .replacingAll("{max}", with: String(config.password.maxLength))
    }

    static let rightToLeft: Set<String> = ["ar", "he", "fa", "ur"]
}

extension String {
    /// Every occurrence of `target` replaced by `replacement`.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
