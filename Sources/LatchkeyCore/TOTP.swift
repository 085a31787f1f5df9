/// Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 6 digits, 30-second
/// steps, as every authenticator app computes them.
///
/// `verify` accepts the current step and one either way (clock drift), and never a step at or
/// before `lastUsed`, so a code observed over a shoulder or replayed works at most once.
public enum TOTP {
    /// Seconds per step.
    public static let period: Int64 = 30
    /// Digits per code.
    public static let digits = 6
    /// Bytes of secret: 160 bits, RFC 4226's recommendation.
    public static let secretBytes = 20

    /// The step `now` falls in.
    public static func step(at now: Int64) -> Int64 { now / period }

    /// The code for `step` (RFC 4226 §5.3 dynamic truncation).
    public static func code(secret: [UInt8], step: Int64) -> String {
        let counter = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(step) >> (56 - 8 * $0)) }
        let mac = Nettle.hmacSHA1(key: secret, message: counter)
        let offset = Int(mac[19] & 0x0f)
        let value = (UInt32(mac[offset] & 0x7f) << 24 | UInt32(mac[offset + 1]) << 16
                     | UInt32(mac[offset + 2]) << 8 | UInt32(mac[offset + 3])) % 1_000_000
        let text = String(value)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// The step whose code `given` is, within one step of `now` and after `lastUsed`; nil when
    /// none. Every candidate is compared, in constant time, so the answer's timing says nothing.
    public static func verify(_ given: String, secret: [UInt8], now: Int64, lastUsed: Int64) -> Int64? {
        let typed = Array(given.utf8.filter { $0 != UInt8(ascii: " ") })
        guard typed.count == digits, typed.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        var found: Int64?
        for candidate in (step(at: now) - 1)...(step(at: now) + 1) {
            let matches = Sodium.constantTimeEqual(Array(code(secret: secret, step: candidate).utf8), typed)
            if matches && candidate > lastUsed && found == nil { found = candidate }
        }
        return found
    }

    /// The `otpauth://` address an authenticator app scans (Key Uri Format).
    public static func provisioningURI(secret: [UInt8], account: String, issuer: String) -> String {
        let label = Escape.urlComponent(issuer) + ":" + Escape.urlComponent(account)
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(Escape.urlComponent(issuer))"
            + "&algorithm=SHA1&digits=\(digits)&period=\(period)"
    }
}

/// RFC 4648 base32 without padding: how TOTP secrets are typed into authenticator apps.
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// `bytes` in base32, upper case, unpadded.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer = 0, bits = 0
        for byte in bytes {
            buffer = buffer << 8 | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[buffer >> (bits - 5) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[buffer << (5 - bits) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }
}
