import CSodium

/// The site's 256-bit secret, from which one subkey per purpose is derived.
///
/// Separate subkeys mean a token hash can never be replayed as a session hash and
/// a sealed mail body can never be opened with the token key.
public struct SiteKey: Sendable {
    /// What a derived subkey is for; the raw value is libsodium's subkey id.
    public enum Purpose: UInt64, Sendable {
        /// Keyed hash of reset tokens, the lookup column of `reset_token`.
        case tokenHash = 1
        /// Encryption of reset tokens, so support staff can copy a live link.
        case tokenSeal = 2
        /// Keyed hash of session ids.
        case sessionHash = 3
        /// Encryption of queued mail bodies, which hold links.
        case mailSeal = 4
        /// Keyed hash of throttle keys (addresses, IPs), so counters hold no plain address.
        case throttleHash = 5
        /// Keyed hash of staff session ids: a customer's session hash can never open the console.
        case staffSessionHash = 6
        /// Keyed hash of staff enrolment tokens and recovery codes.
        case staffTokenHash = 7
        /// Encryption of staff TOTP secrets and of what an enrolment page shows.
        case staffSeal = 8
        /// Keyed hash of API keys.
        case apiKeyHash = 9
        /// Encryption of the answers kept for `Idempotency-Key` replays (one may hold a link).
        case apiSeal = 10
        /// Keyed hash of email-change confirmation tokens.
        case emailChangeHash = 11
    }

    private let master: [UInt8]

    /// Wraps 32 bytes of key material.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a site key is 32 bytes")
        master = bytes
    }

    /// A fresh random key.
    public static func generate() -> SiteKey { SiteKey(bytes: Sodium.randomBytes(32)) }

    /// Reads a key file: 64 hex characters and an optional newline.
    public static func load(path: String) throws -> SiteKey {
        guard let data = FileBytes.read(path, limit: 4096) else {
            throw CoreError.file(path: path, reason: "cannot read the site key (run `latchkey init`, or check permissions)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmed
        guard let bytes = Sodium.fromHex(text, expectedCount: 32) else {
            throw CoreError.file(path: path, reason: "not a site key (expected 64 hex characters)")
        }
        return SiteKey(bytes: bytes)
    }

    /// The key file's text.
    public var fileText: String { Sodium.hex(master) + "\n" }

    /// The 32-byte subkey for `purpose`.
    public func subkey(_ purpose: Purpose) -> [UInt8] {
        Sodium.initialize()
        var out = [UInt8](repeating: 0, count: 32)
        let context: [CChar] = Array("latchkey".utf8CString)
        crypto_kdf_derive_from_key(&out, 32, purpose.rawValue, context, master)
        return out
    }
}
