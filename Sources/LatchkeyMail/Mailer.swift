import LatchkeyCore
import LatchkeySite
import LatchkeyStore

/// Renders a person's email in their language, records it in the history (sealed, since it may
/// hold a live link), and delivers what is due.
public final class Mailer {
    /// How delivering one message ended.
    public enum Delivery: Equatable, Sendable {
        case sent
        case failed(String)
        /// Already sent, being sent by another process, or not due yet.
        case skipped
    }

    let config: SiteConfig
    let db: Database
    let sealKey: [UInt8]
    let transport: Transport
    private var cachedRenderer: (EmailRenderer, [LocaleTable])?

    /// A mailer for the site; templates and string tables are read on first use.
    public init(config: SiteConfig, db: Database, key: SiteKey) {
        self.config = config
        self.db = db
        self.sealKey = key.subkey(.mailSeal)
        self.transport = Transport(config: config)
    }

    /// A `sending` claim older than this belongs to a process that died: the transport's
    /// timeout plus a margin.
    var staleAfter: Int64 { config.mail.timeout.seconds + 60 }

    private func renderer() throws -> (EmailRenderer, [LocaleTable]) {
        if let cachedRenderer { return cachedRenderer }
        let tables = try SiteSource.loadTables(config: config)
        let context = PageContext(config: config, tables: tables, year: Clock.year(of: Clock.now()))
        let made = (EmailRenderer(templates: TemplateSet(folder: config.resolve(config.templates)), context: context), tables)
        cachedRenderer = made
        return made
    }

    /// Reads the string tables and parses `kinds`' templates now (by rendering each once), so a
    /// transaction that queues one holds the database's write lock only for the render itself,
    /// not for reading files in a process that has just started.
    public func prepare(_ kinds: [EmailKind]) throws {
        let (renderer, _) = try renderer()
        let table = try table(config.defaultLocale)
        for kind in kinds { _ = try renderer.render(kind, table: table, values: renderer.sample(table: table)) }
    }

    /// The string table for language `code` (the default one when the site does not speak it).
    public func table(_ code: String) throws -> LocaleTable {
        SiteSource.table(code, in: try renderer().1)
    }

    /// The language for `person`'s mail: theirs if the site speaks it, else the one they used, else the default.
    public func language(for person: Person, requested: String? = nil) -> String {
        language(for: MailRecipient(person), requested: requested)
    }

    /// The language for `recipient`'s mail: theirs if the site speaks it, else the one they used, else the default.
    public func language(for recipient: MailRecipient, requested: String? = nil) -> String {
        for candidate in [recipient.locale, requested ?? ""] where config.locales.contains(candidate) { return candidate }
        return config.defaultLocale
    }

    /// Renders `kind` for `person` and records it as queued; returns the history id.
    /// `recipient` overrides the person's address (the old one, when it changes). Call inside `write`.
    @discardableResult
    public func queue(_ kind: EmailKind, to person: Person, recipient: String? = nil, values: [String: TemplateValue],
                      language requested: String? = nil, by actor: String, now: Int64) throws -> Int64 {
        var to = MailRecipient(person)
        if let recipient { to.email = recipient }
        var all = values
        all["email"] = all["email"] ?? .string(person.email)
        return try queue(kind, to: to, values: all, language: requested, by: actor, now: now)
    }

    /// Renders `kind` for `recipient` and records it as queued; returns the history id. Call inside `write`.
    @discardableResult
    public func queue(_ kind: EmailKind, to recipient: MailRecipient, values: [String: TemplateValue],
                      language requested: String? = nil, by actor: String, now: Int64) throws -> Int64 {
        let (renderer, tables) = try renderer()
        let code = language(for: recipient, requested: requested)
        let table = SiteSource.table(code, in: tables)
        var all = values
        all["name"] = all["name"] ?? .string(recipient.name)
        all["email"] = all["email"] ?? .string(recipient.email)
        let rendered = try renderer.render(kind, table: table, values: all)
        let message = MailMessage(from: config.mail.from, to: recipient.email, toName: recipient.name, replyTo: config.mail.replyTo,
                                  subject: rendered.subject, text: rendered.text, html: rendered.html, language: code, date: now)
        return try db.enqueueMail(personID: recipient.personID, kind: kind.rawValue, recipient: recipient.email, subject: rendered.subject,
                                  locale: code, messageID: message.messageID,
                                  sealedMessage: Sodium.seal(try message.rendered(), key: sealKey), createdBy: actor, now: now)
    }

    /// Delivers message `id` if it is due (or `force`), recording the outcome.
    @discardableResult
    public func deliver(id: Int64, now: Int64, force: Bool = false) throws -> Delivery {
        try deliver(ids: [id], now: now, force: force)[0]
    }

    /// Delivers messages `ids` that are due (or all, with `force`), recording each outcome; the
    /// outcomes in the same order. Claims and outcomes are written a batch per transaction, since
    /// a commit costs more than a message. A batch is claimed only as long as its messages take:
    /// through `sendmail`, which may take up to `mail.timeout` each, one message at a time.
    @discardableResult
    public func deliver(ids: [Int64], now: Int64, force: Bool = false) throws -> [Delivery] {
        let batch = if case .maildir = transport { 32 } else { 1 }
        var outcomes: [Delivery] = []
        for start in stride(from: 0, to: ids.count, by: batch) {
            outcomes += try deliverBatch(Array(ids[start..<min(start + batch, ids.count)]), now: now, force: force)
        }
        return outcomes
    }

    private func deliverBatch(_ ids: [Int64], now: Int64, force: Bool) throws -> [Delivery] {
        let claimed = try db.write {
            try ids.map { try db.claimMail(id: $0, now: now, staleAfter: staleAfter, force: force) }
        }
        let outcomes = claimed.map { sealed -> Delivery in
            guard let sealed else { return .skipped }
            guard let message = Sodium.open(sealed, key: sealKey) else {
                return .failed("cannot open the stored message: the site key changed since it was queued")
            }
            do {
                try transport.send(message, timeout: config.mail.timeout)
                return .sent
            } catch {
                return .failed("\(error)")
            }
        }
        try db.write {
            for (id, outcome) in zip(ids, outcomes) {
                switch outcome {
                case .sent: try db.markMailSent(id: id, now: Clock.now())
                case let .failed(reason): try db.markMailFailed(id: id, error: reason, now: Clock.now(), retryAfter: config.mail.retryAfter.seconds)
                case .skipped: break
                }
            }
        }
        return outcomes
    }

    /// Delivers everything due; returns how many were sent and how many failed.
    public func deliverDue(now: Int64) throws -> (sent: Int, failed: Int) {
        Mailer.count(try deliver(ids: try db.dueMail(now: now, staleAfter: staleAfter), now: now))
    }

    /// Sends every failed message now, whether or not its backoff has run out: for after the
    /// transport is fixed. Returns how many were sent and how many failed again.
    public func retryFailed(now: Int64) throws -> (sent: Int, failed: Int) {
        Mailer.count(try deliver(ids: try db.failedMail(), now: now, force: true))
    }

    static func count(_ outcomes: [Delivery]) -> (sent: Int, failed: Int) {
        var sent = 0, failed = 0
        for outcome in outcomes {
            switch outcome {
            case .sent: sent += 1
            case .failed: failed += 1
            case .skipped: break
            }
        }
        return (sent, failed)
    }
}
