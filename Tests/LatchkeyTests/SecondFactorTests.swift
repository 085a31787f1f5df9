import Testing
@testable import LatchkeyCore

/// TOTP against RFC 6238's own test vectors, base32 against RFC 4648's, address ranges, and the
/// QR code's fixed patterns (its content is checked by a real decoder in the browser test).
@Suite struct SecondFactorTests {
    /// RFC 6238 Appendix B: the SHA-1 secret is the ASCII of "12345678901234567890".
    let secret = Array("12345678901234567890".utf8)

    @Test func hmacSHA1MatchesRFC2202() {
        let mac = Nettle.hmacSHA1(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Sodium.hex(mac) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    }

    @Test(arguments: [(Int64(59), "287082"), (1111111109, "081804"), (1111111111, "050471"),
                      (1234567890, "005924"), (2000000000, "279037"), (20000000000, "353130")])
    func codesMatchRFC6238(time: Int64, code: String) {
        #expect(TOTP.code(secret: secret, step: TOTP.step(at: time)) == code)
    }

    @Test func aCodeIsAcceptedWithinOneStepEitherWayAndOnlyAfterTheLastUsed() {
        let now: Int64 = 1234567890, step = TOTP.step(at: now)
        for drift in [-1, 0, 1] {
            let code = TOTP.code(secret: secret, step: step + Int64(drift))
            #expect(TOTP.verify(code, secret: secret, now: now, lastUsed: 0) == step + Int64(drift))
        }
        #expect(TOTP.verify(TOTP.code(secret: secret, step: step + 2), secret: secret, now: now, lastUsed: 0) == nil)
        #expect(TOTP.verify(TOTP.code(secret: secret, step: step - 2), secret: secret, now: now, lastUsed: 0) == nil)
        let current = TOTP.code(secret: secret, step: step)
        #expect(TOTP.verify(current, secret: secret, now: now, lastUsed: step) == nil, "a used step works once only")
        #expect(TOTP.verify("12345", secret: secret, now: now, lastUsed: 0) == nil)
        #expect(TOTP.verify("abcdef", secret: secret, now: now, lastUsed: 0) == nil)
    }

    @Test(arguments: [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"),
                      ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")])
    func base32MatchesRFC4648(plain: String, encoded: String) {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
    }

    @Test func provisioningURINamesTheIssuerAndAccount() {
        let uri = TOTP.provisioningURI(secret: secret, account: "ann@example.com", issuer: "Acme Academy")
        #expect(uri == "otpauth://totp/Acme%20Academy:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Academy&algorithm=SHA1&digits=6&period=30")
    }

    @Test func addressRangesMatchTheirOwnAddressesOnly() throws {
        let v4 = try #require(CIDR("10.1.0.0/16"))
        #expect(v4.contains("10.1.255.7") && !v4.contains("10.2.0.1") && !v4.contains("::ffff:10.1.0.1"))
        let host = try #require(CIDR("192.0.2.10"))
        #expect(host.contains("192.0.2.10") && !host.contains("192.0.2.11"))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains("2001:db8:1::5") && !v6.contains("2001:db9::1") && !v6.contains("10.0.0.1"))
        #expect(CIDR("10.0.0.0/33") == nil && CIDR("not an address") == nil && CIDR("10.0.0.0/x") == nil)
    }

    @Test func qrCodeSizesAndFinderPatterns() throws {
        let small = try #require(QRCode("hello"))
        #expect(small.size == 21)
        let uri = try #require(QRCode(String(repeating: "x", count: 120)))
        #expect(uri.size == 4 * 7 + 17)
        #expect(QRCode(String(repeating: "x", count: 214)) == nil)
        for (x, y) in [(0, 0), (small.size - 7, 0), (0, small.size - 7)] {
            // A finder: a dark 7×7 ring, a light ring inside it, a dark 3×3 centre.
            #expect(small.modules[y][x] && small.modules[y + 6][x + 6] && !small.modules[y + 1][x + 1] && small.modules[y + 3][x + 3])
        }
        #expect(small.modules[small.size - 8][8], "the dark module")
        #expect(small.svg(title: "<t>").contains("<title>&lt;t&gt;</title>"))
    }
}
