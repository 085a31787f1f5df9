import LatchkeyCore

/// Renders the branded, localized emails: subject, text part and HTML part.
public struct EmailRenderer {
    /// One rendered email, before MIME.
    public struct Rendered: Equatable {
        /// The subject line, with the site name filled in.
        public let subject: String
        /// The plain-text body.
        public let text: String
        /// The HTML body.
        public let html: String
    }

    let templates: TemplateSet
    let context: PageContext

    /// A renderer over the site's templates.
    public init(templates: TemplateSet, context: PageContext) {
        self.templates = templates
        self.context = context
    }

    /// Renders `kind` in `table`'s language with the message's own `values` (name, link, expires…).
    public func render(_ kind: EmailKind, table: LocaleTable, values: [String: TemplateValue]) throws -> Rendered {
        let full = context.email(table: table).merging(values)
        let subject = (table.string("email.\(kind.localeKey).subject") ?? kind.rawValue)
            .replacingAll("{site_name}", with: context.config.siteName)
        return Rendered(subject: subject,
                        text: try templates.renderEmail(kind.rawValue, "txt", full),
                        html: try templates.renderEmail(kind.rawValue, "html", full))
    }

    /// Renders every kind with sample values, so a broken email template fails the build
    /// instead of the first customer who needs it.
    public func validate(table: LocaleTable) throws {
        for kind in EmailKind.allCases { _ = try render(kind, table: table, values: sample(table: table)) }
    }

    /// Values every template can be rendered with: for checking them, and for reading and
    /// parsing them ahead of a transaction (`Mailer.prepare`).
    public func sample(table: LocaleTable) -> [String: TemplateValue] {
        ["name": "Ada", "email": "ada@example.com", "new_email": "ada@example.org",
         "link": .string(context.config.absoluteURL("cgi-bin/reset?token=sample")),
         "expires": .string(PageContext.words(for: context.config.reset.linkLifetime, table: table))]
    }
}
