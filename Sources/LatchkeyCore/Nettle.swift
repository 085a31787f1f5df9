import CNettle

/// Nettle (its `nettle_` names: the short ones are C macros, which Swift does not import), for the one primitive libsodium lacks: HMAC-SHA1, which TOTP authenticator apps use.
public enum Nettle {
    /// HMAC-SHA1 of `message` with `key` (20 bytes).
    public static func hmacSHA1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var context = hmac_sha1_ctx()
        var digest = [UInt8](repeating: 0, count: Int(SHA1_DIGEST_SIZE))
        nettle_hmac_sha1_set_key(&context, key.count, key)
        nettle_hmac_sha1_update(&context, message.count, message)
        nettle_hmac_sha1_digest(&context, digest.count, &digest)
        return digest
    }
}
