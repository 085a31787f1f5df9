import CSQLite
import LatchkeyCore

/// A value bound to or read from a SQLite statement.
public enum SQLValue: Equatable, Sendable {
    case null
    case int(Int64)
    case text(String)
    case blob([UInt8])
}

/// One result row, by column name.
public struct Row: Sendable {
    /// The statement's column names, shared by all its rows.
    let columns: [String]
    let values: [SQLValue]

    /// A linear search: a row has a handful of columns, and comparing short names costs less
    /// than hashing them. The last of two same-named columns wins, as it did in a dictionary.
    private func value(_ column: String) -> SQLValue? {
        columns.lastIndex(of: column).map { values[$0] }
    }

    /// Integer column; nil when NULL or absent.
    public func int(_ column: String) -> Int64? { if case let .int(v)? = value(column) { return v }; return nil }
    /// Text column; nil when NULL or absent.
    public func text(_ column: String) -> String? { if case let .text(v)? = value(column) { return v }; return nil }
    /// Blob column; nil when NULL or absent.
    public func blob(_ column: String) -> [UInt8]? { if case let .blob(v)? = value(column) { return v }; return nil }
}

/// One connection to the site's SQLite file, opened the same way by every process.
public final class Database {
    /// How long a writer waits for another process's lock before giving up: longer than
    /// any of our transactions (an Argon2id hash is done before BEGIN, never inside).
    public static let busyTimeoutMilliseconds: Int32 = 5000

    let handle: OpaquePointer
    /// The file this connection is open on.
    public let path: String
    /// A prepared statement with its column names, read once rather than for every row.
    private struct Prepared {
        let statement: OpaquePointer
        let columns: [String]
        /// SQLite's count of re-preparations (after a schema change) when `columns` was read.
        let reprepares: Int32
    }

    /// The site's webhook endpoints: `recordEvent` writes a delivery for each that wants an event.
    public var webhooks: [SiteConfig.Webhook] = []
    /// How many events this connection has recorded, so a CGI knows to send them after answering.
    public internal(set) var eventsRecorded = 0

    /// How many times a statement of this connection was prepared again because another
    /// connection changed the schema (SQLite does it on its own): a persistent worker that sees
    /// this move is replaced.
    public private(set) var schemaChangesSeen = 0

    /// Prepared statements by SQL text. Parsing a statement costs more than running it, and the
    /// after-response worker runs the same few for every job it works.
    private var statements: [String: Prepared] = [:]

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit {
        for prepared in statements.values { sqlite3_finalize(prepared.statement) }
        sqlite3_close_v2(handle)
    }

    /// The one open routine: busy timeout, WAL (checked), foreign keys, `synchronous=NORMAL`.
    /// `create` is for `latchkey init`; a CGI never creates a missing database.
    public static func open(path: String, create: Bool = false) throws -> Database {
        _ = configured
        var raw: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &raw, flags, nil)
        guard status == SQLITE_OK, let raw else {
            let message = raw.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let raw { sqlite3_close_v2(raw) }
            throw StoreError(code: status, message: "\(message): \(path)", sql: "")
        }
        sqlite3_extended_result_codes(raw, 1)
        let db = Database(handle: raw, path: path)
        sqlite3_busy_timeout(raw, busyTimeoutMilliseconds)
        // Keep the -wal and -shm files when the last connection closes. Every CGI process is the
        // last connection when it exits; without this each one deletes them and the next
        // recreates and zero-fills them, which costs more than the query.
        var persist: Int32 = 1
        sqlite3_file_control(raw, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
        let mode = try db.query("PRAGMA journal_mode=WAL").first?.text("journal_mode")
        guard mode == "wal" else {
            throw StoreError(code: SQLITE_ERROR, message: "journal_mode is \(mode ?? "unknown"), expected wal", sql: "PRAGMA journal_mode=WAL")
        }
        try db.execute("PRAGMA foreign_keys=ON")
        try db.execute("PRAGMA synchronous=NORMAL")
        // When the last connection closes it checkpoints; truncating the WAL then means the next
        // process, which must rebuild the -shm index from the WAL, finds nothing to read. (Leaving
        // the checkpoint to a later writer does not work here: every CGI is the first connection,
        // its rebuilt index counts no frame as copied, so each writer would copy them all again.)
        try db.execute("PRAGMA journal_size_limit=0")
        return db
    }

    /// `latchkey_sqlite3_configure`, once per process, before its first connection.
    private static let configured: Int32 = latchkey_sqlite3_configure()

    /// The current journal mode, as SQLite reports it.
    public func journalMode() throws -> String {
        try query("PRAGMA journal_mode").first?.text("journal_mode") ?? ""
    }

    /// Runs one statement for its effect.
    public func execute(_ sql: String, _ parameters: [SQLValue] = []) throws {
        _ = try query(sql, parameters)
    }

    /// Runs one statement and returns its rows.
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [Row] {
        let prepared = try self.prepared(sql)
        let statement = prepared.statement
        var columns = prepared.columns
        // Reset whatever happens: a statement left mid-step would keep its read transaction open.
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in parameters.enumerated() {
            let position = Int32(index + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, position)
            case let .int(v): status = sqlite3_bind_int64(statement, position, v)
            case let .text(v): status = sqlite3_bind_text(statement, position, v, -1, Database.transient)
            case let .blob(v): status = v.withUnsafeBytes {
                sqlite3_bind_blob(statement, position, $0.baseAddress, Int32($0.count), Database.transient)
            }
            }
            guard status == SQLITE_OK else { throw failure(sql) }
        }
        var rows: [Row] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw failure(sql, code: step) }
            if rows.isEmpty { columns = currentColumns(sql, prepared) }
            var values: [SQLValue] = []
            values.reserveCapacity(columns.count)
            for column in 0..<Int32(columns.count) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(statement, column))))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let base = sqlite3_column_blob(statement, column)
                    values.append(.blob(count == 0 ? [] : Array(UnsafeRawBufferPointer(start: base, count: count))))
                default: values.append(.null)
                }
            }
            rows.append(Row(columns: columns, values: values))
        }
        if sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0) != prepared.reprepares {
            schemaChangesSeen += 1
            statements[sql] = Prepared(statement: statement, columns: Database.columnNames(statement),
                                       reprepares: sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0))
        }
        return rows
    }

    /// The prepared form of `sql`, made once per connection.
    private func prepared(_ sql: String) throws -> Prepared {
        if let prepared = statements[sql] { return prepared }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw failure(sql)
        }
        let prepared = Prepared(statement: statement, columns: Database.columnNames(statement),
                                reprepares: sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0))
        statements[sql] = prepared
        return prepared
    }

    /// The column names of `prepared` as it stands after its first step: SQLite re-prepares a
    /// statement when the schema changed, and `SELECT *` may then have other columns.
    private func currentColumns(_ sql: String, _ prepared: Prepared) -> [String] {
        let reprepares = sqlite3_stmt_status(prepared.statement, SQLITE_STMTSTATUS_REPREPARE, 0)
        guard reprepares != prepared.reprepares else { return prepared.columns }
        let columns = Database.columnNames(prepared.statement)
        statements[sql] = Prepared(statement: prepared.statement, columns: columns, reprepares: reprepares)
        return columns
    }

    private static func columnNames(_ statement: OpaquePointer) -> [String] {
        (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two
    /// processes never both read and then fail to upgrade. Rolls back when `body` throws. Inside
    /// another `write` it is a savepoint: a `body` that throws undoes its own changes only, and
    /// the outer transaction decides whether the rest commits.
    public func write<T>(_ body: () throws -> T) throws -> T {
        let nested = sqlite3_get_autocommit(handle) == 0
        try execute(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute(nested ? "RELEASE nested" : "COMMIT")
            return result
        } catch {
            if nested {
                try? execute("ROLLBACK TO nested")
                try? execute("RELEASE nested")
            } else {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// True when no transaction is open and no statement is mid-step: how every request of a
    /// persistent worker must leave the connection (else the next would inherit its locks).
    public var isIdle: Bool {
        guard sqlite3_get_autocommit(handle) != 0 else { return false }
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { return false }
            statement = sqlite3_next_stmt(handle, current)
        }
        return true
    }

    /// Rows this connection has inserted, updated or deleted since it opened.
    public var totalChanges: Int { Int(sqlite3_total_changes(handle)) }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last insert.
    public var lastInsertID: Int64 { sqlite3_last_insert_rowid(handle) }

    private func failure(_ sql: String, code: Int32? = nil) -> StoreError {
        StoreError(code: code ?? sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// SQLite copies bound text and blobs (SQLITE_TRANSIENT), since Swift buffers are temporary.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
