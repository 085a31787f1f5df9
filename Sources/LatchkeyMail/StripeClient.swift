import LatchkeyCore

/// The one call Latchkey makes to Stripe's API: a Checkout Session's line items, for a session
/// that carries no `metadata.latchkey_offers` and no mapped Payment Link. Through `Curl`, as
/// webhooks are.
public enum StripeClient {
    /// The price and product ids of Checkout Session `session`'s line items.
    public static func lineItemIDs(session: String, config: SiteConfig) throws -> [String] {
        guard session.hasPrefix("cs_"), session.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw MailError("not a Checkout Session id")
        }
        let url = config.stripe.apiBase + "/v1/checkout/sessions/" + session + "/line_items?limit=100"
        let answer = try Curl.request([("user", config.stripe.apiKey + ":"), ("url", url)], keepBody: true, timeout: 10)
        guard answer.status == 200 else {
            throw MailError("Stripe's API did not list the line items of \(session): \(answer.status.map { "HTTP \($0)" } ?? "no answer") \(answer.body.suffix(200))")
        }
        let items = try JSONValue.parse(Array(answer.body.utf8))["data"]?.array ?? []
        return items.flatMap { [$0["price"]?["id"]?.string, $0["price"]?["product"]?.string].compactMap { $0 } }
    }
}
