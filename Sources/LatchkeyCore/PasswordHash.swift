import CSodium

/// Argon2id cost parameters; the defaults are OWASP's minimum (19 MiB, 2 passes, 1 lane).
public struct Argon2Parameters: Equatable, Sendable {
    /// Passes over memory (libsodium's `opslimit`).
    public var iterations: Int
    /// Memory in MiB (libsodium's `memlimit` divided by 2^20).
    public var memoryMiB: Int

    /// Parameters with the given cost.
    public init(iterations: Int = 2, memoryMiB: Int = 19) {
        self.iterations = iterations
        self.memoryMiB = memoryMiB
    }

    var opsLimit: UInt64 { UInt64(iterations) }
    var memLimit: Int { memoryMiB * 1024 * 1024 }
}

/// Argon2id password hashing through libsodium's `crypto_pwhash_argon2id_str`.
///
/// Slow by design: one hash costs tens of milliseconds and the configured memory, so an
/// attacker with a copy of the database pays the same for every guess. Callers throttle.
public enum PasswordHash {
    /// Hashes `password` into a self-describing `$argon2id$…` string with a fresh salt.
    public static func hash(_ password: String, parameters: Argon2Parameters) throws -> String {
        Sodium.initialize()
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_argon2id_strbytes()))
        let status = password.withCString { chars in
            crypto_pwhash_argon2id_str(&out, chars, UInt64(password.utf8.count),
                                       parameters.opsLimit, parameters.memLimit)
        }
        guard status == 0 else { throw CoreError.crypto("Argon2id hashing failed (out of memory?)") }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True when `password` matches `hash`; false for a wrong password or a malformed hash.
    public static func verify(_ password: String, against hash: String) -> Bool {
        Sodium.initialize()
        return password.withCString { chars in
            crypto_pwhash_argon2id_str_verify(hash, chars, UInt64(password.utf8.count)) == 0
        }
    }

    /// True when `hash` was made with other parameters (or another algorithm) than these.
    public static func needsRehash(_ hash: String, parameters: Argon2Parameters) -> Bool {
        Sodium.initialize()
        return crypto_pwhash_argon2id_str_needs_rehash(hash, parameters.opsLimit, parameters.memLimit) != 0
    }
}
