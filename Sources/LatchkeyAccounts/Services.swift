import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// Everything a request or a command works with, opened once: config, key, database, mailer.
public final class Services {
    public let config: SiteConfig
    public let key: SiteKey
    public let db: Database
    public let mailer: Mailer

    /// Opens the site's key and database. A CGI passes `create: false` and gets an error
    /// rather than a new, empty database when the file is missing.
    public init(config: SiteConfig, create: Bool = false) throws {
        self.config = config
        key = try SiteKey.load(path: config.resolve(config.keyFile))
        db = try Database.open(path: config.resolve(config.database), create: create)
        mailer = Mailer(config: config, db: db, key: key)
    }
}
