extension SiteConfig {
    /// `api`: the JSON API's per-key rate.
    public struct API: Sendable {
        /// `api.rate_limit`: requests per key per window; beyond it, 429 with `Retry-After`.
        public var rateLimit = Limit(count: 600, window: TimeSpan(seconds: 60))
    }

    /// `stripe`: what the Stripe endpoint needs to trust an event and turn it into access.
    public struct Stripe: Sendable {
        /// `stripe.webhook_secret`: the endpoint's signing secret, `whsec_…`; empty turns the endpoint off.
        public var webhookSecret = ""
        /// `stripe.offers`: Stripe price, product or Payment Link id → offer slug.
        public var offers: [String: String] = [:]
        /// `stripe.revoke_on_refund`: a refunded charge revokes what its purchase granted.
        public var revokeOnRefund = false
        /// `stripe.api_key`: a restricted key that may read Checkout Sessions, to fetch line items.
        public var apiKey = ""
        /// `stripe.api_base`: where Stripe's API is (only changed to test against a stand-in).
        public var apiBase = "https://api.stripe.com"
        /// `stripe.tolerance`: how old a signed timestamp may be.
        public var tolerance = TimeSpan(seconds: 300)
    }

    /// One entry of `webhooks`: an endpoint that receives signed events.
    public struct Webhook: Sendable, Equatable {
        /// Where events are POSTed: `https://`, or `http://` to this machine.
        public var url: String
        /// The Standard Webhooks secret, `whsec_` and base64.
        public var secret: String
        /// The event types it receives; empty for all.
        public var events: [String]

        /// True when this endpoint receives events of `type`.
        public func wants(_ type: String) -> Bool { events.isEmpty || events.contains(type) }
    }

    /// The events an endpoint may subscribe to.
    public static let eventTypes = ["person.created", "access.granted", "access.revoked", "password.changed",
                                    "person.disabled", "person.deleted", "mail.failed"]

    /// The webhook configured for `url`, if any.
    public func webhook(url: String) -> Webhook? { webhooks.first { $0.url == url } }

    static func loadIntegration(_ root: ConfigReader, into config: inout SiteConfig) throws {
        let api = try root.object("api")
        try api.allow(["rate_limit"])
        config.api.rateLimit = try api.limit("rate_limit", default: config.api.rateLimit)

        let stripe = try root.object("stripe")
        try stripe.allow(["webhook_secret", "offers", "revoke_on_refund", "api_key", "api_base", "tolerance"])
        config.stripe.webhookSecret = try secret(stripe, "webhook_secret", "must be the endpoint's signing secret, whsec_…") {
            $0.isEmpty || ($0.hasPrefix("whsec_") && $0.count > 10)
        }
        config.stripe.offers = try stripe.stringMap("offers")
        config.stripe.revokeOnRefund = try stripe.bool("revoke_on_refund", default: false)
        config.stripe.apiKey = try secret(stripe, "api_key", "must be a Stripe secret or restricted key (sk_… or rk_…)") {
            $0.isEmpty || (($0.hasPrefix("sk_") || $0.hasPrefix("rk_")) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        }
        config.stripe.apiBase = try stripe.string("api_base", default: config.stripe.apiBase) { isAllowedWebhookURL($0) }
            reason: { "must be an https:// URL (or http:// to this machine)" }
        config.stripe.tolerance = try stripe.span("tolerance", default: config.stripe.tolerance)

        config.webhooks = try root.list("webhooks").map { entry in
            try entry.allow(["url", "secret", "events"])
            let url = try entry.string("url", default: "", nonEmpty: true) { isAllowedWebhookURL($0) }
                reason: { "must be an https:// URL, or http:// to 127.0.0.1, [::1] or localhost" }
            let secret = try secret(entry, "secret", "must be whsec_ followed by base64 (at least 16 bytes); latchkey webhook secret makes one") {
                WebhookSignature.key(secret: $0) != nil
            }
            let events = try entry.strings("events", default: [])
            if let unknown = events.first(where: { !eventTypes.contains($0) }) {
                throw entry.error("events", "'\(unknown)' is not an event (known: \(eventTypes.joined(separator: ", ")))")
            }
            return Webhook(url: url, secret: secret, events: events)
        }
    }

    /// A secret's value, checked by `valid`; an error never repeats it (config errors reach logs).
    static func secret(_ reader: ConfigReader, _ key: String, _ reason: String, valid: (String) -> Bool) throws -> String {
        let value = try reader.string(key, default: "")
        guard valid(value) else { throw reader.error(key, reason + " (the value is not shown)") }
        return value
    }

    /// Only `https://` URLs, or `http://` to the loopback interface: a webhook carries personal data.
    public static func isAllowedWebhookURL(_ url: String) -> Bool {
        guard !url.hasControlCharacters, !url.includes(" "), !url.includes("\\") else { return false }
        let scheme = url.hasPrefix("https://") ? 8 : url.hasPrefix("http://") ? 7 : 0
        guard scheme > 0 else { return false }
        // No user-info: in `http://127.0.0.1:80@example.com/` the host is example.com.
        let authority = url.dropFirst(scheme).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.includes("@") else { return false }
        if scheme == 8 { return true }
        let rest = url.dropFirst(7)
        let host = rest.hasPrefix("[") ? String(rest.prefix { $0 != "]" }) + "]" : String(rest.prefix { $0 != ":" && $0 != "/" })
        let after = rest.dropFirst(host.count)
        guard after.isEmpty || after.hasPrefix(":") || after.hasPrefix("/") else { return false }
        return host == "localhost" || host == "[::1]" || host.hasPrefix("127.") && CIDR(host) != nil
    }
}
