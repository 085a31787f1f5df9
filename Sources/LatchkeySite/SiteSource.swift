import LatchkeyCore

/// Reading the site source folder's string tables, checked against each other.
public enum SiteSource {
    /// Loads the table of every configured locale, the default first, and fails when one
    /// lacks a key the default has or a message the pages need.
    public static func loadTables(config: SiteConfig) throws -> [LocaleTable] {
        let folder = config.resolve(config.localesDir)
        let tables = try config.locales.map { try LocaleTable.load(code: $0, folder: folder) }
        let reference = tables[0]
        let required = SitePages.messages.values.flatMap { $0.map { "messages." + $0.key } }
            + SitePages.errorStatuses.map { "errors.\($0)" }
            + EmailKind.allCases.map { "email.\($0.localeKey).subject" }
            + ["language_name"]
        for key in Set(required).sorted() where reference.string(key) == nil {
            throw CoreError.locale(file: reference.file, key: key, reason: "missing")
        }
        for table in tables.dropFirst() { try table.requireSameKeys(as: reference) }
        return tables
    }

    /// The table for `code`, or the default one when the site does not speak it.
    public static func table(_ code: String, in tables: [LocaleTable]) -> LocaleTable {
        tables.first { $0.code == code } ?? tables[0]
    }
}
