import Testing
@testable import LatchkeyCGI
@testable import LatchkeyCore

/// The integration's signatures against vectors computed elsewhere (Python's `hmac`, and the
/// Standard Webhooks specification's own example), and the API's route table against its
/// OpenAPI document: what is served and what is described are the same list.
@Suite struct IntegrationTests {
    let stripeSecret = "whsec_test_secret_not_32_bytes_long"
    let stripeBody = Array(#"{"id":"evt_1","type":"checkout.session.completed"}"#.utf8)
    let stripeMAC = "df999fbfc1a08f66e49b099d61637797c53ab57928f6749000edae299a7aa3e5"

    @Test func aStripeSignatureIsHMACSHA256OfTimestampDotBodyUnderTheWholeSecret() throws {
        #expect(StripeSignature.header(body: stripeBody, secret: stripeSecret, timestamp: 1_700_000_000) == "t=1700000000,v1=" + stripeMAC)
        try StripeSignature.verify(header: "t=1700000000,v1=" + stripeMAC, body: stripeBody, secret: stripeSecret, now: 1_700_000_100)
        // Any v1 may match: Stripe signs with the old and the new secret while one is rolled.
        try StripeSignature.verify(header: "t=1700000000,v1=" + String(repeating: "0", count: 64) + ",v1=" + stripeMAC,
                                   body: stripeBody, secret: stripeSecret, now: 1_700_000_000)
    }

    @Test func aStripeSignatureIsRefusedWhenAltered() {
        let good = "t=1700000000,v1=" + stripeMAC
        #expect(throws: StripeSignature.Failure.mismatch) {
            try StripeSignature.verify(header: good, body: stripeBody + [0x20], secret: stripeSecret, now: 1_700_000_000)
        }
        #expect(throws: StripeSignature.Failure.mismatch) {
            try StripeSignature.verify(header: good, body: stripeBody, secret: stripeSecret + "x", now: 1_700_000_000)
        }
        #expect(throws: StripeSignature.Failure.mismatch) {
            try StripeSignature.verify(header: "t=1700000001,v1=" + stripeMAC, body: stripeBody, secret: stripeSecret, now: 1_700_000_000)
        }
        #expect(throws: StripeSignature.Failure.stale(seconds: 301)) {
            try StripeSignature.verify(header: good, body: stripeBody, secret: stripeSecret, now: 1_700_000_301)
        }
        for header in ["", "v1=" + stripeMAC, "t=1700000000", "t=1700000000,v0=" + stripeMAC, "t=x,v1=" + stripeMAC] {
            #expect(throws: StripeSignature.Failure.malformed) {
                try StripeSignature.verify(header: header, body: stripeBody, secret: stripeSecret, now: 1_700_000_000)
            }
        }
    }

    @Test func outboundEventsAreSignedAsTheStandardWebhooksExampleIs() throws {
        let key = try #require(WebhookSignature.key(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        #expect(WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330,
                                      body: Array(#"{"test": 2432232314}"#.utf8), key: key) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(WebhookSignature.key(secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(WebhookSignature.key(secret: "whsec_c2hvcnQ=") == nil, "under 16 bytes")
        #expect(WebhookSignature.key(secret: WebhookSignature.newSecret())?.count == 24)
    }

    @Test func webhookURLsAreHTTPSOrLoopback() {
        for url in ["https://hooks.example.com/latchkey", "http://127.0.0.1:9000/in", "http://localhost/x", "http://[::1]:8080/"] {
            #expect(SiteConfig.isAllowedWebhookURL(url), "\(url)")
        }
        for url in ["http://example.com/", "http://127.0.0.1.example.com/", "ftp://127.0.0.1/", "http://10.0.0.1/", "https://", "http://localhost.evil/",
                    "http://127.0.0.1:8080@example.com/", "http://localhost:80@example.com/hook", "https://user@hooks.example.com/",
                    "http://127.0.0.1\\@example.com/"] {
            #expect(!SiteConfig.isAllowedWebhookURL(url), "\(url)")
        }
    }

    @Test func theServedRoutesAreExactlyTheDocumentedOperations() throws {
        let document = try JSONValue.parse(Array(OpenAPIDocument.source.utf8))
        guard case let .object(paths)? = document["paths"] else { Issue.record("no paths"); return }
        var documented = Set<String>()
        for path in paths {
            guard case let .object(operations) = path.value else { continue }
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert(method.uppercased() + " " + path.key)
            }
        }
        let served = Set(APIEndpoint.routes.map { $0.method + " " + $0.path } + ["GET " + APIEndpoint.documentPath])
        #expect(documented == served)
    }

    @Test func theDocumentNamesThisSitesAddressAsItsServer() throws {
        var config = SiteConfig(file: "/srv/site/latchkey.json")
        config.baseURL = "https://learn.example.com"
        config.cgiPrefix = "/auth/"
        let document = try JSONValue.parse(Array(OpenAPIDocument.text(for: config).utf8))
        #expect(document["servers"]?.array?.first?["url"]?.string == "https://learn.example.com/auth/api")
    }
}

/// The account page's device names, from real browsers' user agents.
@Suite struct UserAgentTests {
    @Test(arguments: [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0", "Firefox", "Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Chrome", "macOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge", "Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "Safari", "iOS"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", "Chrome", "Android"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox", "Linux"),
        ("", "", ""),
    ])
    func browsersAndSystemsAreNamed(agent: String, browser: String, system: String) {
        let described = UserAgent.describe(agent)
        #expect(described.browser == browser && described.system == system)
    }
}
