import Testing
@testable import LatchkeyCGI
@testable import LatchkeyCore

@Suite struct FormDataTests {
    func parse(_ text: String) throws -> FormData { try FormData(urlEncoded: Array(text.utf8)) }

    func status(_ text: String) -> Int? {
        do { _ = try parse(text); return nil } catch let error as HTTPError { return error.status } catch { return -1 }
    }

    @Test func decodesPlusAndPercentEscapesAsUTF8() throws {
        let form = try parse("email=ana%40example.com&name=Jos%C3%A9+Mar%C3%ADa&empty=&flag")
        #expect(form["email"] == "ana@example.com")
        #expect(form["name"] == "José María")
        #expect(form["empty"] == "")
        #expect(form["flag"] == "")
        #expect(form["missing"] == nil)
    }

    @Test(arguments: [
        "email=%zz", "email=%4", "email=%", "email=%C3%28", "email=a%00b", "email=a%0D%0ABcc:x",
        "email=a&email=b", "email=%FF", "name=tab%09",
    ])
    func badInputIsA400(text: String) {
        #expect(status(text) == 400)
    }
}

@Suite struct CGIRequestTests {
    @Test func emptyVariablesCountAsAbsent() {
        let request = CGIRequest(environment: ["REQUEST_METHOD": "post", "CONTENT_LENGTH": "", "CONTENT_TYPE": "", "HTTP_ORIGIN": ""])
        #expect(request.method == "POST")
        #expect(request.contentLength == nil)
        #expect(request.contentType == nil)
        #expect(request.origin == nil)
    }

    @Test(arguments: [("12", 12), ("-1", -1), ("abc", -1), ("0", 0)] as [(String, Int)])
    func contentLengthIsANumberOrMarkedBad(raw: String, expected: Int) {
        #expect(CGIRequest(environment: ["CONTENT_LENGTH": raw]).contentLength == expected)
    }

    @Test func cookiesAreFoundByNameAndADuplicateCountsAsNone() {
        #expect(CGIRequest(environment: ["HTTP_COOKIE": "a=1; lk_reset=tok; b=2"]).cookie("lk_reset") == "tok")
        #expect(CGIRequest(environment: ["HTTP_COOKIE": "lk_reset=one; lk_reset=two"]).cookie("lk_reset") == nil)
        #expect(CGIRequest(environment: ["HTTP_COOKIE": String(repeating: "x", count: 5000) + "; lk_reset=t"]).cookie("lk_reset") == nil)
    }

    @Test func userAgentKeepsPrintableASCIIOnlyAndIsCut() {
        #expect(CGIRequest(environment: ["HTTP_USER_AGENT": "Mozilla/5.0 (X11)\u{7}\tcafé 🔑"]).userAgent == "Mozilla/5.0 (X11)caf ")
        #expect(CGIRequest(environment: ["HTTP_USER_AGENT": String(repeating: "a", count: 300)]).userAgent.utf8.count
                == CGIRequest.maxUserAgentBytes)
        #expect(CGIRequest(environment: ["HTTP_COOKIE": " lk_session = abc ;x=1"]).cookie("lk_session") == "abc")
    }

    @Test func httpsIsDetectedFromTheServersVariables() {
        #expect(CGIRequest(environment: ["HTTPS": "on"]).isHTTPS)
        #expect(CGIRequest(environment: ["REQUEST_SCHEME": "https"]).isHTTPS)
        #expect(!CGIRequest(environment: ["HTTPS": "off"]).isHTTPS)
        #expect(!CGIRequest(environment: [:]).isHTTPS)
    }

    @Test(arguments: [
        (["HTTP_ORIGIN": "https://learn.example.com"], nil),
        (["HTTP_ORIGIN": "https://evil.example"], 403),
        (["HTTP_ORIGIN": "https://learn.example.com.evil.example"], 403),
        (["HTTP_SEC_FETCH_SITE": "cross-site"], 403),
        (["HTTP_SEC_FETCH_SITE": "same-origin"], nil),
        ([:], nil),
    ] as [([String: String], Int?)])
    func crossSitePostsAreRefused(headers: [String: String], expected: Int?) {
        var config = SiteConfig(file: "/tmp/latchkey.json")
        config.baseURL = "https://learn.example.com"
        let request = CGIRequest(environment: headers.merging(["REQUEST_METHOD": "POST"]) { a, _ in a })
        var status: Int?
        do { try request.requireSameOrigin(config) } catch let error as HTTPError { status = error.status } catch {}
        #expect(status == expected)
    }

    @Test func responsesCarryStatusSecurityHeadersAndLength() {
        let text = String(decoding: CGIResponse.redirect(to: "https://x.example/a.html").serialized(), as: UTF8.self)
        #expect(text.hasPrefix("Status: 303 See Other\r\n"))
        for header in ["Cache-Control: no-store", "Referrer-Policy: no-referrer", "X-Content-Type-Options: nosniff",
                       "Location: https://x.example/a.html", "Content-Length: 0", "frame-ancestors 'none'"] {
            #expect(text.contains(header), "\(header)")
        }
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func nextMustBeAPathOnThisSite() {
        let config = SiteConfig(file: "/tmp/latchkey.json")
        #expect(SessionCookie.sameSitePath("/members/x.html", config) == "/members/x.html")
        for bad in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "members", "/a\r\nb", "javascript:alert(1)"] {
            #expect(SessionCookie.sameSitePath(bad, config) == nil, "\(bad)")
        }
    }
}
