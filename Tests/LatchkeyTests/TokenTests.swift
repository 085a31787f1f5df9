import FoundationEssentials
import Testing
@testable import LatchkeyCore
@testable import LatchkeyStore

/// The reset-link rules of SPEC §5, with the clock passed in.
@Suite struct TokenTests {
    let lifetime = TimeSpan(seconds: 24 * 3600), window = TimeSpan(seconds: 16 * 3600)

    func withTokens(_ body: (ResetTokens, Database, Int64) throws -> Void) throws {
        let folder = "/tmp/latchkey-token-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let db = try Database.open(path: folder + "/db.sqlite3", create: true)
        try db.migrate()
        let person = try db.write { try db.insertPerson(email: "ada@example.com", name: "Ada", kind: "customer", now: 1000) }
        try body(ResetTokens(db: db, key: SiteKey.generate()), db, person.id)
    }

    func issue(_ tokens: ResetTokens, _ db: Database, _ person: Int64, at now: Int64) throws -> ResetTokens.Link {
        try db.write { try tokens.issue(personID: person, purpose: "reset", lifetime: lifetime, reuseWindow: window, by: "test", now: now) }
    }

    @Test func aNewTokenIs256BitsAndChecksValid() throws {
        try withTokens { tokens, db, person throws in
            let link = try issue(tokens, db, person, at: 0)
            #expect(link.token.count == 43)
            #expect(Sodium.fromBase64URL(link.token, expectedCount: 32) != nil)
            guard case .valid(_, let owner) = try tokens.check(link.token, now: 10) else { Issue.record("not valid"); return }
            #expect(owner == person)
        }
    }

    @Test func askingAgainInsideTheWindowGivesTheSameLinkAndAfterItANewOneThatVoidsTheOld() throws {
        try withTokens { tokens, db, person throws in
            let first = try issue(tokens, db, person, at: 0)
            let again = try issue(tokens, db, person, at: window.seconds - 1)
            #expect(again.token == first.token)
            #expect(again.reused)
            let later = try issue(tokens, db, person, at: window.seconds + 1)
            #expect(later.token != first.token)
            #expect(try tokens.check(first.token, now: window.seconds + 2) == .expired)
            if case .valid = try tokens.check(later.token, now: window.seconds + 2) {} else { Issue.record("new link not valid") }
        }
    }

    @Test func aTokenExpiresAfterItsLifetime() throws {
        try withTokens { tokens, db, person throws in
            let link = try issue(tokens, db, person, at: 0)
            if case .valid = try tokens.check(link.token, now: lifetime.seconds - 1) {} else { Issue.record("should still be valid") }
            #expect(try tokens.check(link.token, now: lifetime.seconds) == .expired)
        }
    }

    @Test func aTokenIsConsumedOnceAndCheckingNeverConsumes() throws {
        try withTokens { tokens, db, person throws in
            let link = try issue(tokens, db, person, at: 0)
            for _ in 0..<3 { if case .valid = try tokens.check(link.token, now: 5) {} else { Issue.record("a check consumed it") } }
            guard case let .valid(id, _) = try tokens.check(link.token, now: 5) else { return }
            #expect(try db.write { try tokens.consume(tokenID: id, now: 6) })
            #expect(try !db.write { try tokens.consume(tokenID: id, now: 7) })
            #expect(try tokens.check(link.token, now: 8) == .expired)
        }
    }

    @Test func aPasswordChangeVoidsEveryOutstandingLink() throws {
        try withTokens { tokens, db, person throws in
            let link = try issue(tokens, db, person, at: 0)
            try db.write { try db.setPassword(personID: person, hash: "$argon2id$x", mustChange: false, now: 1) }
            #expect(try tokens.check(link.token, now: 2) == .expired)
            #expect(try tokens.current(personID: person, now: 2) == nil)
        }
    }

    @Test(arguments: ["", "short", String(repeating: "A", count: 43), String(repeating: "!", count: 43), String(repeating: "A", count: 44)])
    func garbageIsInvalid(token: String) throws {
        try withTokens { tokens, db, person throws in
            _ = try issue(tokens, db, person, at: 0)
            #expect(try tokens.check(token, now: 1) == .invalid)
        }
    }

    @Test func theDatabaseHoldsNeitherTheTokenNorAnythingThatOpensWithoutTheKey() throws {
        try withTokens { tokens, db, person throws in
            let link = try issue(tokens, db, person, at: 0)
            let row = try #require(try db.query("SELECT * FROM reset_token").first)
            let bytes = try #require(Sodium.fromBase64URL(link.token, expectedCount: 32))
            #expect(row.blob("token_hash") != bytes)
            #expect(row.blob("token_hash") != Sodium.keyedHash(bytes, key: SiteKey.generate().subkey(.tokenHash)))
            #expect(Sodium.open(try #require(row.blob("sealed_token")), key: SiteKey.generate().subkey(.tokenSeal)) == nil)
        }
    }

    @Test func throttleCountsWithinTheWindowAndRestartsAfterIt() throws {
        try withTokens { _, db, _ throws in
            let limit = SiteConfig.Limit(count: 2, window: TimeSpan(seconds: 60))
            let key = SiteKey.generate().subkey(.throttleHash)
            let hits = try (0..<3).map { _ in try db.write { try db.throttleHit(scope: "t", key: "a@b.co", limit: limit, hashKey: key, now: 100) } }
            #expect(hits == [true, true, false])
            #expect(try db.write { try db.throttleHit(scope: "t", key: "other@b.co", limit: limit, hashKey: key, now: 100) })
            #expect(try db.write { try db.throttleHit(scope: "t", key: "a@b.co", limit: limit, hashKey: key, now: 161) })
        }
    }
}
