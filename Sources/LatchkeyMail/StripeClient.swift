import LatchkeyCore

/// The one call Latchkey makes to Stripe's API: a Checkout Session's line items, for a session
/// that carries no `metadata.latchkey_offers` and no mapped Payment Link. Through `curl`, as
/// webhooks are; the key goes in on standard input, never on a command line other users can read.
public enum StripeClient {
    /// The price and product ids of Checkout Session `session`'s line items.
    public static func lineItemIDs(session: String, config: SiteConfig) throws -> [String] {
        guard session.hasPrefix("cs_"), session.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw MailError("not a Checkout Session id")
        }
        guard let curl = WebhookSender.curlPath else { throw MailError("curl is not installed (apt install curl)") }
        let url = config.stripe.apiBase + "/v1/checkout/sessions/" + session + "/line_items?limit=100"
        let settings = "user = \"\(config.stripe.apiKey):\"\nurl = \"\(url)\"\n"
        let outcome = try Subprocess.run(curl, ["--silent", "--show-error", "--max-time", "10", "--proto", "=https,http", "--config", "-",
                                                "--output", "/dev/stderr", "--write-out", "%{stderr}\nlatchkey-status %{http_code}\n"],
                                         input: Array(settings.utf8), timeout: 15, environment: [:], captureLimit: 1 << 20)
        let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        guard let marker = lines.lastIndex(where: { $0.hasPrefix("latchkey-status ") }), lines[marker] == "latchkey-status 200" else {
            throw MailError("Stripe's API did not list the line items of \(session): \(outcome.stderr.suffix(200))")
        }
        let items = try JSONValue.parse(Array(lines[..<marker].joined(separator: "\n").utf8))["data"]?.array ?? []
        return items.flatMap { [$0["price"]?["id"]?.string, $0["price"]?["product"]?.string].compactMap { $0 } }
    }
}
