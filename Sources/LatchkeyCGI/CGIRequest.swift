import LatchkeyCore

/// What the web server said about one request (RFC 3875), read once from the environment.
/// Empty variables count as absent: fcgiwrap sends empty CONTENT_LENGTH and CONTENT_TYPE.
/// `HTTP_PROXY` is never read (httpoxy).
public struct CGIRequest: Sendable {
    /// Longest query string we look at: a token link is ~60 bytes.
    public static let maxQueryBytes = 1024
    /// Largest Cookie header we parse; browsers cap one cookie at 4 KiB.
    public static let maxCookieBytes = 4096
    /// Largest User-Agent kept for the session list.
    public static let maxUserAgentBytes = 256

    /// `REQUEST_METHOD`, uppercased; `GET` when absent.
    public let method: String
    /// `QUERY_STRING`, still URL-encoded.
    public let queryString: String
    /// The part of the URL after the script's name (the members gate's file).
    public let pathInfo: String
    /// `CONTENT_TYPE` of the body, if any.
    public let contentType: String?
    /// The declared body length; nil when absent, -1 when not a number.
    public let contentLength: Int?
    /// The raw `Cookie` header; empty when none was sent.
    public let cookieHeader: String
    /// The client's IP address, for throttles and the audit trail.
    public let remoteAddr: String
    /// True when the request came over HTTPS (`HTTPS` or `REQUEST_SCHEME`).
    public let isHTTPS: Bool
    /// The `Origin` header, checked against the site's to refuse cross-site POSTs.
    public let origin: String?
    /// The `Sec-Fetch-Site` header, lowercased; a second cross-site signal.
    public let secFetchSite: String?
    /// The `User-Agent`, printable ASCII only and cut to `maxUserAgentBytes`.
    public let userAgent: String
    /// The `Authorization` header (the API's bearer key). Apache passes it with `CGIPassAuth On`.
    public let authorization: String?
    /// The `Idempotency-Key` header of an API POST.
    public let idempotencyKey: String?
    /// The `Stripe-Signature` header of a Stripe event.
    public let stripeSignature: String?
    /// The members gate's conditional and partial requests: `Range`, `If-Range`,
    /// `If-None-Match`, `If-Modified-Since`.
    public let range: String?, ifRange: String?, ifNoneMatch: String?, ifModifiedSince: String?
    /// True when a FastCGI server asks as an authorizer (`FCGI_ROLE`): 200 lets the request
    /// through, anything else is the client's answer.
    public let isAuthorizer: Bool
    /// `FCGI_APACHE_ROLE`: which of Apache's phases an authorizer answers (`AUTHENTICATOR`
    /// from mod_authnz_fcgi, `ACCESS_CHECKER` from mod_fcgid).
    public let apacheRole: String?
    /// `REQUEST_URI`: the path and query the client asked for (what an authorizer guards).
    public let requestURI: String?
    /// `REDIRECT_STATUS`: set by Apache when this request is the error document of another
    /// (mod_fcgid's access checker said no: `ErrorDocument 401` comes here).
    public let redirectStatus: String?
    /// The body already read, under FastCGI (its STDIN stream); nil under CGI, where it waits
    /// on standard input.
    public var body: [UInt8]?

    /// The variables `init(environment:)` reads.
    public static let variables = ["REQUEST_METHOD", "QUERY_STRING", "PATH_INFO", "CONTENT_TYPE", "CONTENT_LENGTH",
                                   "HTTP_COOKIE", "REMOTE_ADDR", "HTTPS", "REQUEST_SCHEME", "HTTP_ORIGIN",
                                   "HTTP_SEC_FETCH_SITE", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION", "HTTP_IDEMPOTENCY_KEY",
                                   "HTTP_STRIPE_SIGNATURE", "HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "FCGI_ROLE", "FCGI_APACHE_ROLE", "REQUEST_URI", "REDIRECT_STATUS"]

    /// Reads the request's variables from `environment`.
    public init(environment: [String: String]) {
        func value(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return v
        }
        method = value("REQUEST_METHOD")?.uppercased() ?? "GET"
        queryString = value("QUERY_STRING") ?? ""
        pathInfo = value("PATH_INFO") ?? ""
        contentType = value("CONTENT_TYPE")
        contentLength = value("CONTENT_LENGTH").map { Int($0).flatMap { $0 >= 0 ? $0 : nil } ?? -1 }
        cookieHeader = value("HTTP_COOKIE") ?? ""
        remoteAddr = value("REMOTE_ADDR") ?? ""
        let https = value("HTTPS")?.lowercased()
        isHTTPS = https == "on" || https == "1" || value("REQUEST_SCHEME")?.lowercased() == "https"
        origin = value("HTTP_ORIGIN")
        secFetchSite = value("HTTP_SEC_FETCH_SITE")?.lowercased()
        // Bytes: every printable ASCII character is one byte, and no byte of a longer one is ASCII.
        userAgent = String(decoding: (value("HTTP_USER_AGENT") ?? "").utf8.filter { $0 >= 0x20 && $0 < 0x7f }
            .prefix(CGIRequest.maxUserAgentBytes), as: UTF8.self)
        authorization = value("HTTP_AUTHORIZATION")
        // Kept when empty: an empty key is a malformed one, not none.
        idempotencyKey = environment["HTTP_IDEMPOTENCY_KEY"]
        stripeSignature = value("HTTP_STRIPE_SIGNATURE")
        range = value("HTTP_RANGE")
        ifRange = value("HTTP_IF_RANGE")
        ifNoneMatch = value("HTTP_IF_NONE_MATCH")
        ifModifiedSince = value("HTTP_IF_MODIFIED_SINCE")
        isAuthorizer = value("FCGI_ROLE") == "AUTHORIZER"
        apacheRole = value("FCGI_APACHE_ROLE")
        requestURI = value("REQUEST_URI")
        redirectStatus = value("REDIRECT_STATUS")
    }

    /// The query's fields; a malformed or oversized query is a 400.
    public func query() throws -> FormData {
        guard queryString.utf8.count <= CGIRequest.maxQueryBytes else { throw HTTPError(400, "query string too long") }
        return try FormData(urlEncoded: Array(queryString.utf8))
    }

    /// The value of cookie `name`, if sent once and well-formed.
    public func cookie(_ name: String) -> String? {
        guard cookieHeader.utf8.count <= CGIRequest.maxCookieBytes else { return nil }
        var found: String?
        // Split on bytes: `;` and `=` are ASCII, so every cut falls between characters.
        for pair in cookieHeader.utf8.split(separator: UInt8(ascii: ";")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1)
            guard parts.count == 2, String(decoding: parts[0], as: UTF8.self).trimmed == name else { continue }
            if found != nil { return nil }
            found = String(decoding: parts[1], as: UTF8.self).trimmed
        }
        return found
    }

    /// Refuses cross-site POSTs: an Origin other than the site's, or a browser saying the
    /// request came from another site. Requests with neither header (non-browser clients,
    /// which cannot carry a victim's cookies) pass. `Origin: null` passes only when the browser
    /// also says `Sec-Fetch-Site: same-origin`: Chromium sends that pair for a form on a page
    /// served with `Referrer-Policy: no-referrer`, as ours are.
    public func requireSameOrigin(_ config: SiteConfig) throws {
        if origin == "null" && secFetchSite == "same-origin" { return }
        if let origin, origin != config.origin {
            throw HTTPError(403, "cross-site POST refused (Origin \(origin.prefix(100)))")
        }
        if let site = secFetchSite, site == "cross-site" || (site == "same-site" && origin == nil) {
            throw HTTPError(403, "cross-site POST refused (Sec-Fetch-Site \(site))")
        }
    }

    /// Requires one of `methods`; a 405 naming them otherwise.
    public func require(_ methods: [String]) throws {
        guard methods.contains(method) else {
            throw HTTPError(405, "method \(method.prefix(20)) not allowed", headers: [("Allow", methods.sorted().joined(separator: ", "))])
        }
    }
}

extension Substring {
    var trimmed: String { String(self).trimmed }
}
