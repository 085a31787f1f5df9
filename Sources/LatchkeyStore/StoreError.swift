/// A SQLite failure with its result code, SQLite's message and the statement that failed.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    /// SQLite's primary or extended result code.
    public let code: Int32
    /// SQLite's message, or ours when the failure is not SQLite's.
    public let message: String
    /// The statement, when there was one.
    public let sql: String

    public var description: String {
        sql.isEmpty ? "database: \(message) (code \(code))" : "database: \(message) (code \(code)) in: \(sql)"
    }

    /// True when another process holds the lock beyond the busy timeout.
    public var isBusy: Bool { code & 0xff == 5 || code & 0xff == 6 }
    /// True when the file cannot be written (read-only file or folder, full disk).
    public var isUnwritable: Bool { [8, 13, 14, 10].contains(code & 0xff) }
}
