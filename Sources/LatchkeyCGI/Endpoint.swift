import LatchkeyAccounts
import LatchkeyCore

/// A handler's result: the answer, and what to do once it has been sent.
public struct Reply: Sendable {
    /// The answer to send.
    public var response: CGIResponse
    /// Work to run once the answer has gone out, if any.
    public var after: AfterResponse?

    /// `response`, then `after`.
    public init(_ response: CGIResponse, after: AfterResponse? = nil) {
        self.response = response
        self.after = after
    }
}

/// Whether the handler read the request body; if not, the pipeline drains it before answering,
/// because Apache resets the connection when a CGI exits without reading what it was sent.
public final class BodyState {
    var read = false
    /// Most bytes drained from an unread body; a larger one is refused without reading it.
    static let drainLimit = 1 << 20
}

/// What a handler gets: the request, the site, and a way to open the database when needed
/// (the forgot handler answers without touching it).
public struct Context {
    /// The request being answered.
    public let request: CGIRequest
    /// The site's settings.
    public let config: SiteConfig
    /// The current time, in Unix seconds.
    public let now: Int64
    let openServices: () throws -> Services
    let body: BodyState

    /// Opens the key and database.
    public func services() throws -> Services { try openServices() }

    /// Reads and parses the form body (once).
    public func form(repeatable: Set<String> = []) throws -> FormData {
        let form = try FormData.readBody(request, repeatable: repeatable)
        body.read = true
        return form
    }

    /// The absolute URL of `page` (or its variant with `message`) in `locale`.
    public func pageURL(_ page: String, message: String? = nil, locale: String) -> String {
        config.origin + SitePages.path(page, message: message, locale: locale, config: config)
    }

    /// `raw` if the site speaks it, else the default locale.
    public func locale(_ raw: String?) -> String {
        guard let raw, config.locales.contains(raw) else { return config.defaultLocale }
        return raw
    }
}
