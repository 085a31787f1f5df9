import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// Everything a request or a command works with, opened once: config, key, database, mailer.
public final class Services {
    /// The site's settings.
    public let config: SiteConfig
    /// The site secret that seals tokens and mail.
    public let key: SiteKey
    /// The open site database.
    public let db: Database
    /// Queues and delivers the site's email.
    public let mailer: Mailer

    /// Opens the site's key and database. A CGI passes `create: false` and gets an error
    /// rather than a new, empty database when the file is missing.
    public init(config: SiteConfig, create: Bool = false) throws {
        self.config = config
        key = try SiteKey.load(path: config.resolve(config.keyFile))
        db = try Database.open(path: config.resolve(config.database), create: create)
        db.webhooks = config.webhooks
        mailer = Mailer(config: config, db: db, key: key)
    }
}
