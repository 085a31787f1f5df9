import FoundationEssentials
import Testing
@testable import LatchkeyCore

@Suite struct ConfigTests {
    func load(_ json: String) throws -> SiteConfig {
        let folder = "/tmp/latchkey-config-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/latchkey.json"
        _ = FileManager.default.createFile(atPath: file, contents: Data(json.utf8))
        return try SiteConfig.load(file: file)
    }

    func keyOfError(_ json: String) -> String? {
        do { _ = try load(json); return nil } catch let CoreError.config(_, key, _) { return key } catch { return "\(error)" }
    }

    @Test func defaultsFillEveryKeyNotGiven() throws {
        let config = try load(#"{"site_name": "Acme", "base_url": "https://learn.example.com/portal"}"#)
        #expect(config.reset.linkLifetime == TimeSpan(seconds: 86400))
        #expect(config.reset.welcomeLinkLifetime == TimeSpan(seconds: 7 * 86400))
        #expect(config.reset.reuseWindow == TimeSpan(seconds: 16 * 3600))
        #expect(config.password.minLength == 8 && config.password.maxLength == 128)
        #expect(config.throttle.forgotPerAddress == .init(count: 5, window: TimeSpan(seconds: 3600)))
        #expect(config.rootPath == "/portal/")
        #expect(config.origin == "https://learn.example.com")
        #expect(config.isHTTPS)
        #expect(config.resolve(config.database) == config.folder + "/var/latchkey.sqlite3")
    }

    @Test(arguments: [
        (#"{"reset": {"link_lifetime": "soon"}}"#, "reset.link_lifetime"),
        (##"{"brand": {"primary_colour": "#fff"}}"##, "brand.primary_colour"),
        (#"{"brand": {"primary_color": "blue"}}"#, "brand.primary_color"),
        (#"{"locales": []}"#, "locales"),
        (#"{"locales": ["english"]}"#, "locales"),
        (#"{"base_url": "learn.example.com"}"#, "base_url"),
        (#"{"mail": {"transport": "smtp://x"}}"#, "mail.transport"),
        (#"{"mail": {"from": "a@b\r\nBcc: x@y"}}"#, "mail.from"),
        (#"{"password": {"min_length": 4}}"#, "password.min_length"),
        (#"{"password": {"argon2_memory_mib": 8}}"#, "password.argon2_memory_mib"),
        (#"{"throttle": {"forgot_per_ip": {"count": 0}}}"#, "throttle.forgot_per_ip.count"),
        (#"{"reset": {"link_lifetime": "1h", "reuse_window": "2h"}}"#, "reset.reuse_window"),
        (#"{"cgi_prefix": "cgi-bin"}"#, "cgi_prefix"),
        (#"{"site_name": 3}"#, "site_name"),
        (#"{"brand": {"footer_links": [{"label": "Terms"}]}}"#, "brand.footer_links[0].href"),
    ] as [(String, String)])
    func aBadValueIsOneErrorNamingItsKey(json: String, key: String) {
        #expect(keyOfError(json) == key)
    }

    @Test func invalidJSONNamesTheFile() {
        do {
            _ = try load("{ nope")
            Issue.record("expected failure")
        } catch {
            #expect("\(error)".contains("latchkey.json"))
            #expect("\(error)".contains("not valid JSON"))
        }
    }

    @Test(arguments: [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800)] as [(String, Int64)])
    func durationsParse(text: String, seconds: Int64) {
        #expect(TimeSpan(text)?.seconds == seconds)
        #expect(TimeSpan(text)?.description == text)
    }

    @Test(arguments: ["", "h", "0h", "-1h", "1w", "1.5h", "24 h", "99999999d"])
    func badDurationsAreRejected(text: String) {
        #expect(TimeSpan(text) == nil)
    }

    @Test func configIsFoundByFlagThenEnvironmentThenDefault() {
        #expect(SiteConfig.locate(explicit: "/a/b.json", environment: ["LATCHKEY_CONFIG": "/c.json"]) == "/a/b.json")
        #expect(SiteConfig.locate(explicit: nil, environment: ["LATCHKEY_CONFIG": "/c.json"]) == "/c.json")
        #expect(SiteConfig.locate(explicit: nil, environment: ["LATCHKEY_CONFIG": ""]).hasSuffix("/site/latchkey.json"))
    }

    @Test func contrastFollowsWCAG() {
        let white = Color(hex: "#ffffff")!, black = Color(hex: "#000")!
        #expect(abs(white.contrast(with: black) - 21) < 0.01)
        #expect(Color(hex: "#4f46e5")!.contrast(with: white) > 4.5)
        #expect(Color(hex: "#dddddd")!.contrast(with: white) < 4.5)
        #expect(Color(hex: "#12345") == nil)
    }

    @Test func coloursParseThreeOrSixHexDigitsOfEitherCase() {
        #expect(Color(hex: "#ABC") == Color(hex: "#aabbcc"))
        #expect(Color(hex: "#4F46E5") == Color(hex: "#4f46e5"))
        #expect(Color(hex: "#ff0000")!.red == 1 && Color(hex: "#ff0000")!.green == 0)
        for bad in ["ffffff", "#fffffg", "#+ffff", "#ééé", "#", "#fffffff", " #ffffff"] {
            #expect(Color(hex: bad) == nil, "\(bad)")
        }
    }

    @Test(arguments: [("en", true), ("fr", true), ("pt-BR", true), ("ast", true), ("zh-Hant", true), ("de-419", true),
                      ("e", false), ("engl", false), ("pt-", false), ("-BR", false), ("pt-BR-x", false),
                      ("pt_BR", false), ("é1", false), ("en-abcdefghi", false)] as [(String, Bool)])
    func localeCodesAreTwoOrThreeLettersAndAnOptionalSubtag(code: String, valid: Bool) {
        #expect(SiteConfig.isLocaleCode(code) == valid)
    }
}
