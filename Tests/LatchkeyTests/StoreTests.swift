import FoundationEssentials
import Testing
import CSQLite
@testable import LatchkeyStore

@Suite struct StoreTests {
    func withDatabase(_ body: (Database, String) throws -> Void) throws {
        let folder = "/tmp/latchkey-store-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/db.sqlite3"
        try body(try Database.open(path: path, create: true), path)
    }

    @Test func openConfirmsWALAndForeignKeys() throws {
        try withDatabase { db, _ throws in
            #expect(try db.journalMode() == "wal")
            #expect(try db.query("PRAGMA foreign_keys").first?.int("foreign_keys") == 1)
            #expect(try db.query("PRAGMA synchronous").first?.int("synchronous") == 1) // NORMAL
        }
    }

    @Test func migrationsAppliedTwiceChangeNothing() throws {
        try withDatabase { db, _ throws in
            let first = try db.migrate()
            #expect(first == Migrations.all.map(\.name))
            let schema = try db.query("SELECT name, sql FROM sqlite_master ORDER BY name").map { "\($0.text("name") ?? "") \($0.text("sql") ?? "")" }
            #expect(try db.migrate().isEmpty)
            let again = try db.query("SELECT name, sql FROM sqlite_master ORDER BY name").map { "\($0.text("name") ?? "") \($0.text("sql") ?? "")" }
            #expect(schema == again)
            #expect(try db.query("SELECT count(*) AS n FROM schema_migration").first?.int("n") == Int64(Migrations.all.count))
            #expect(try db.isCurrent())
        }
    }

    @Test func rowsNameTheirColumnsEvenAfterAnotherConnectionChangesTheSchema() throws {
        try withDatabase { db, path throws in
            try db.execute("CREATE TABLE t (a INTEGER, b TEXT)")
            try db.execute("INSERT INTO t VALUES (1, 'one')")
            let before = try #require(try db.query("SELECT * FROM t").first)
            #expect(before.int("a") == 1 && before.text("b") == "one")
            // Another process reshapes the table; SQLite re-prepares the cached statement.
            let other = try Database.open(path: path)
            try other.execute("ALTER TABLE t RENAME TO t_old")
            try other.execute("CREATE TABLE t (z TEXT, a INTEGER, b TEXT)")
            try other.execute("INSERT INTO t SELECT 'zed', a, b FROM t_old")
            let after = try #require(try db.query("SELECT * FROM t").first)
            #expect(after.text("z") == "zed")
            #expect(after.int("a") == 1 && after.text("b") == "one")
        }
    }

    /// What a FastCGI worker checks after every request before it takes another.
    @Test func aConnectionIsIdleOnlyInAutocommitAndNoticesAnotherChangingTheSchema() throws {
        try withDatabase { db, path throws in
            try db.execute("CREATE TABLE t (a INTEGER)")
            try db.execute("INSERT INTO t VALUES (1), (2)")
            #expect(db.isIdle)
            try db.execute("BEGIN")
            #expect(!db.isIdle)
            try db.execute("ROLLBACK")
            #expect(db.isIdle)
            // A statement stepped once and left: it holds a read transaction open.
            var statement: OpaquePointer?
            sqlite3_prepare_v2(db.handle, "SELECT a FROM t", -1, &statement, nil)
            #expect(sqlite3_step(statement) == SQLITE_ROW)
            #expect(!db.isIdle)
            sqlite3_finalize(statement)
            #expect(db.isIdle)
            // Another connection changing the schema: this one's next use of a statement sees it.
            _ = try db.query("SELECT a FROM t")
            #expect(db.schemaChangesSeen == 0)
            try Database.open(path: path).execute("CREATE TABLE u (b TEXT)")
            _ = try db.query("SELECT a FROM t WHERE a > 5")
            _ = try db.query("SELECT a FROM t")
            #expect(db.schemaChangesSeen > 0)
        }
    }

    @Test func aCGIOpenNeverCreatesAMissingDatabase() {
        #expect(throws: StoreError.self) { try Database.open(path: "/tmp/latchkey-no-such-folder/db.sqlite3") }
    }

    @Test func aFailedWriteRollsBackWholly() throws {
        try withDatabase { db, _ throws in
            try db.migrate()
            struct Stop: Error {}
            #expect(throws: Stop.self) {
                try db.write {
                    try db.execute("INSERT INTO offer (slug, name, created_at) VALUES ('gold', 'Gold', 1)")
                    throw Stop()
                }
            }
            #expect(try db.query("SELECT * FROM offer").isEmpty)
        }
    }

    @Test func aFailedWriteInsideAnotherUndoesOnlyItsOwnChanges() throws {
        try withDatabase { db, _ throws in
            try db.migrate()
            struct Stop: Error {}
            try db.write {
                try db.execute("INSERT INTO offer (slug, name, created_at) VALUES ('gold', 'Gold', 1)")
                #expect(throws: Stop.self) {
                    try db.write {
                        try db.execute("INSERT INTO offer (slug, name, created_at) VALUES ('silver', 'Silver', 1)")
                        throw Stop()
                    }
                }
                try db.write { try db.execute("INSERT INTO offer (slug, name, created_at) VALUES ('bronze', 'Bronze', 1)") }
            }
            #expect(try db.query("SELECT slug FROM offer ORDER BY slug").compactMap { $0.text("slug") } == ["bronze", "gold"])
            // …and when the outer one fails, what the inner ones kept goes too.
            #expect(throws: Stop.self) {
                try db.write {
                    try db.write { try db.execute("INSERT INTO offer (slug, name, created_at) VALUES ('tin', 'Tin', 1)") }
                    throw Stop()
                }
            }
            #expect(try db.query("SELECT count(*) AS n FROM offer").first?.int("n") == 2)
        }
    }

    @Test func foreignKeysAreEnforced() throws {
        try withDatabase { db, _ throws in
            try db.migrate()
            #expect(throws: StoreError.self) {
                try db.execute("INSERT INTO session (person_id, id_hash, created_at, last_seen_at, expires_at) VALUES (42, x'00', 1, 1, 1)")
            }
        }
    }

    @Test func errorsCarryCodeMessageAndSQL() throws {
        try withDatabase { db, _ throws in
            do {
                try db.execute("SELECT * FROM nowhere")
                Issue.record("expected failure")
            } catch let error as StoreError {
                #expect(error.code == 1)
                #expect(error.message.contains("no such table"))
                #expect(error.sql == "SELECT * FROM nowhere")
            }
        }
    }
}
