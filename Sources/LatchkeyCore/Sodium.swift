import CSodium

/// libsodium, initialised once; every other crypto type goes through here.
public enum Sodium {
    private static let ready: Bool = sodium_init() >= 0

    /// Makes sure `sodium_init` has run; traps if the library cannot start (no entropy source).
    public static func initialize() {
        precondition(ready, "libsodium failed to initialise")
    }

    /// `count` bytes from the operating system's CSPRNG.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        initialize()
        var bytes = [UInt8](repeating: 0, count: count)
        randombytes_buf(&bytes, count)
        return bytes
    }

    /// Compares two byte strings in time that depends only on their length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return sodium_memcmp(a, b, a.count) == 0
    }

    /// 32-byte keyed BLAKE2b of `message`: a MAC, so the database alone cannot recompute it.
    public static func keyedHash(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        initialize()
        var out = [UInt8](repeating: 0, count: 32)
        crypto_generichash(&out, 32, message, UInt64(message.count), key, key.count)
        return out
    }

    /// Encrypts and authenticates `plaintext` (XSalsa20-Poly1305); the nonce leads the result.
    public static func seal(_ plaintext: [UInt8], key: [UInt8]) -> [UInt8] {
        initialize()
        let nonce = randomBytes(Int(crypto_secretbox_noncebytes()))
        var box = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_secretbox_macbytes()))
        crypto_secretbox_easy(&box, plaintext, UInt64(plaintext.count), nonce, key)
        return nonce + box
    }

    /// Opens what `seal` made with the same key; nil when it was altered or the key differs.
    public static func open(_ sealed: [UInt8], key: [UInt8]) -> [UInt8]? {
        initialize()
        let nonceCount = Int(crypto_secretbox_noncebytes()), macCount = Int(crypto_secretbox_macbytes())
        guard sealed.count >= nonceCount + macCount else { return nil }
        let nonce = Array(sealed[..<nonceCount]), box = Array(sealed[nonceCount...])
        var plain = [UInt8](repeating: 0, count: box.count - macCount)
        guard crypto_secretbox_open_easy(&plain, box, UInt64(box.count), nonce, key) == 0 else { return nil }
        return plain
    }

    /// URL-safe base64 without padding, the alphabet of every token in a link or cookie.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        let variant = Int32(sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        var out = [CChar](repeating: 0, count: sodium_base64_encoded_len(bytes.count, variant))
        _ = sodium_bin2base64(&out, out.count, bytes, bytes.count, variant)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes URL-safe unpadded base64; nil for any other character or a ragged length.
    public static func fromBase64URL(_ text: String, expectedCount: Int) -> [UInt8]? {
        let input = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: expectedCount + 3)
        var length = 0
        let ok = input.withUnsafeBufferPointer { buffer -> Bool in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: input.count) { chars in
                sodium_base642bin(&out, out.count, chars, input.count, nil, &length, nil,
                                  Int32(sodium_base64_VARIANT_URLSAFE_NO_PADDING)) == 0
            }
        }
        guard ok, !input.isEmpty, length == expectedCount else { return nil }
        return Array(out.prefix(length))
    }

    /// Lowercase hex, for the key file.
    public static func hex(_ bytes: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: bytes.count * 2 + 1)
        _ = sodium_bin2hex(&out, out.count, bytes, bytes.count)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses hex; nil for anything else.
    public static func fromHex(_ text: String, expectedCount: Int) -> [UInt8]? {
        let input = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: expectedCount)
        var length = 0
        let ok = input.withUnsafeBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return base.withMemoryRebound(to: CChar.self, capacity: input.count) { chars in
                sodium_hex2bin(&out, out.count, chars, input.count, nil, &length, nil) == 0
            }
        }
        guard ok, length == expectedCount, input.count == expectedCount * 2 else { return nil }
        return out
    }
}
