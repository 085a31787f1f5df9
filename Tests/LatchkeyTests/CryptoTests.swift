import Testing
@testable import LatchkeyCore

@Suite struct CryptoTests {
    let cheap = Argon2Parameters(iterations: 1, memoryMiB: 8)

    @Test func argon2idRoundTripAcceptsTheRightPasswordOnly() throws {
        let hash = try PasswordHash.hash("correct horse battery", parameters: cheap)
        #expect(hash.hasPrefix("$argon2id$"))
        #expect(PasswordHash.verify("correct horse battery", against: hash))
        #expect(!PasswordHash.verify("correct horse batterY", against: hash))
        #expect(!PasswordHash.verify("", against: hash))
        #expect(!PasswordHash.verify("correct horse battery", against: "not a hash"))
    }

    @Test func twoHashesOfOnePasswordDifferBySalt() throws {
        #expect(try PasswordHash.hash("same", parameters: cheap) != PasswordHash.hash("same", parameters: cheap))
    }

    @Test func defaultsAreAtLeastOWASPMinimum() {
        let defaults = Argon2Parameters()
        #expect(defaults.memoryMiB >= 19 && defaults.iterations >= 2)
    }

    @Test func rehashIsDetectedWhenParametersRise() throws {
        let hash = try PasswordHash.hash("pw-pw-pw-pw", parameters: cheap)
        #expect(!PasswordHash.needsRehash(hash, parameters: cheap))
        #expect(PasswordHash.needsRehash(hash, parameters: Argon2Parameters(iterations: 2, memoryMiB: 8)))
        #expect(PasswordHash.needsRehash(hash, parameters: Argon2Parameters(iterations: 1, memoryMiB: 19)))
    }

    @Test func randomBytesAreFreshEachTime() {
        #expect(Sodium.randomBytes(32) != Sodium.randomBytes(32))
        #expect(Sodium.randomBytes(32).count == 32)
    }

    @Test func base64URLRoundTripsAndRejectsOtherAlphabets() {
        let bytes = Sodium.randomBytes(32)
        let text = Sodium.base64URL(bytes)
        #expect(text.count == 43)
        #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
        #expect(Sodium.fromBase64URL(text, expectedCount: 32) == bytes)
        #expect(Sodium.fromBase64URL(text + "A", expectedCount: 32) == nil)
        #expect(Sodium.fromBase64URL(String(text.dropLast()), expectedCount: 32) == nil)
        #expect(Sodium.fromBase64URL("+" + text.dropFirst(), expectedCount: 32) == nil)
        #expect(Sodium.fromBase64URL("", expectedCount: 32) == nil)
    }

    @Test func sealedBytesOpenOnlyWithTheSameKeyAndUnaltered() {
        let key = SiteKey.generate().subkey(.tokenSeal)
        let sealed = Sodium.seal(Array("secret link".utf8), key: key)
        #expect(Sodium.open(sealed, key: key) == Array("secret link".utf8))
        #expect(Sodium.open(sealed, key: SiteKey.generate().subkey(.tokenSeal)) == nil)
        var altered = sealed
        altered[altered.count - 1] ^= 1
        #expect(Sodium.open(altered, key: key) == nil)
    }

    @Test func subkeysDifferByPurposeAndKeyedHashesByKey() {
        let site = SiteKey.generate()
        #expect(site.subkey(.tokenHash) != site.subkey(.sessionHash))
        #expect(site.subkey(.tokenHash) == site.subkey(.tokenHash))
        let message = Array("token".utf8)
        #expect(Sodium.keyedHash(message, key: site.subkey(.tokenHash)) != Sodium.keyedHash(message, key: site.subkey(.sessionHash)))
    }

    @Test func constantTimeEqualityComparesContentAndLength() {
        #expect(Sodium.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!Sodium.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!Sodium.constantTimeEqual([1, 2, 3], [1, 2]))
    }

    @Test func siteKeyFileRoundTripsAsHex() {
        let key = SiteKey.generate()
        #expect(key.fileText.count == 65)
        #expect(Sodium.fromHex(String(key.fileText.dropLast()), expectedCount: 32) != nil)
        #expect(Sodium.fromHex("zz", expectedCount: 1) == nil)
    }
}
