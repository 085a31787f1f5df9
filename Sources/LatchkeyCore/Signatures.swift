import CSodium

extension Sodium {
    /// HMAC-SHA256 of `parts` (fed in order) under `key` of any length: libsodium's multi-part
    /// API, because Stripe's and Standard Webhooks' secrets are not the 32 bytes of the one-shot call.
    public static func hmacSHA256(key: [UInt8], _ parts: [UInt8]...) -> [UInt8] {
        initialize()
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256_init(&state, key, key.count)
        for part in parts { crypto_auth_hmacsha256_update(&state, part, UInt64(part.count)) }
        crypto_auth_hmacsha256_final(&state, &out)
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return out
    }

    /// Standard (padded) base64, as Standard Webhooks writes signatures and secrets.
    public static func base64(_ bytes: [UInt8]) -> String {
        let variant = Int32(sodium_base64_VARIANT_ORIGINAL)
        var out = [CChar](repeating: 0, count: sodium_base64_encoded_len(bytes.count, variant))
        _ = sodium_bin2base64(&out, out.count, bytes, bytes.count, variant)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes standard padded base64; nil for anything else.
    public static func fromBase64(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard !input.isEmpty else { return nil }
        var out = [UInt8](repeating: 0, count: input.count)
        var length = 0
        let ok = input.withUnsafeBufferPointer { buffer -> Bool in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: input.count) { chars in
                sodium_base642bin(&out, out.count, chars, input.count, nil, &length, nil, Int32(sodium_base64_VARIANT_ORIGINAL)) == 0
            }
        }
        return ok ? Array(out.prefix(length)) : nil
    }
}

/// Stripe's webhook signature: `Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX…]`, each `v1` an
/// HMAC-SHA256 of `TIMESTAMP.BODY` under the endpoint's `whsec_…` secret (used as it is, all of
/// its bytes). Any `v1` may match (Stripe signs with old and new secrets while one is rolled).
public enum StripeSignature {
    /// Why a signature was refused.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// No `t=` or no `v1=` in the header.
        case malformed
        /// The timestamp is further than the tolerance from now (a replay).
        case stale(seconds: Int64)
        /// No `v1` matches.
        case mismatch

        /// One line for the error log.
        public var description: String {
            switch self {
            case .malformed: "Stripe-Signature header is missing or malformed"
            case let .stale(seconds): "Stripe-Signature timestamp is \(seconds) s from now (more than the tolerance)"
            case .mismatch: "no Stripe-Signature v1 matches the body"
            }
        }
    }

    /// Checks `header` against `body`; throws `Failure` unless one `v1` matches and the
    /// timestamp is within `tolerance` seconds of `now`. Compares in constant time.
    public static func verify(header: String, body: [UInt8], secret: String, now: Int64, tolerance: Int64 = 300) throws {
        var timestamp: Int64?
        var candidates: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let key = String(pair[0]).trimmed, value = String(pair[1]).trimmed
            if key == "t" { timestamp = Int64(value) }
            if key == "v1", candidates.count < 8, let mac = Sodium.fromHex(value, expectedCount: 32) { candidates.append(mac) }
        }
        guard let timestamp, !candidates.isEmpty else { throw Failure.malformed }
        let expected = Sodium.hmacSHA256(key: Array(secret.utf8), Array(String(timestamp).utf8), [UInt8(ascii: ".")], body)
        // Every candidate is compared, so the time taken says nothing about which one matched.
        var matched = false
        for candidate in candidates where Sodium.constantTimeEqual(candidate, expected) { matched = true }
        guard matched else { throw Failure.mismatch }
        guard abs(now - timestamp) <= tolerance else { throw Failure.stale(seconds: now - timestamp) }
    }

    /// The header Stripe would send for `body` at `timestamp`: for tests and the benchmark.
    public static func header(body: [UInt8], secret: String, timestamp: Int64) -> String {
        "t=\(timestamp),v1=" + Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), Array(String(timestamp).utf8), [UInt8(ascii: ".")], body))
    }
}

/// Standard Webhooks signatures for outbound events: `webhook-signature: v1,BASE64` where the
/// MAC is HMAC-SHA256 of `ID.TIMESTAMP.BODY` under the secret's bytes (`whsec_` then base64).
public enum WebhookSignature {
    /// The key bytes of a `whsec_…` secret; nil when it is not one.
    public static func key(secret: String) -> [UInt8]? {
        guard secret.hasPrefix("whsec_"), let bytes = Sodium.fromBase64(String(secret.dropFirst(6))), bytes.count >= 16 else { return nil }
        return bytes
    }

    /// The `webhook-signature` header value for message `id` sent at `timestamp`.
    public static func sign(id: String, timestamp: Int64, body: [UInt8], key: [UInt8]) -> String {
        "v1," + Sodium.base64(Sodium.hmacSHA256(key: key, Array((id + "." + String(timestamp) + ".").utf8), body))
    }

    /// A new random secret, `whsec_` and 24 bytes in base64.
    public static func newSecret() -> String { "whsec_" + Sodium.base64(Sodium.randomBytes(24)) }
}
