import LatchkeyCore
import LatchkeyStore

/// One search box over email and name, any case, anywhere in either: the console's people
/// search. Three or more characters go through the trigram index (`person_search`), so a
/// search answers in milliseconds at a million people, newest first; shorter text matches the
/// start of an address through the email index, alphabetically.
public enum PeopleSearch {
    /// Shortest text the trigram index can look up anywhere in a field.
    public static let minimumSubstring = 3

    /// Up to `limit` people matching `text`, skipping `offset`; everyone when `text` is empty.
    public static func find(_ text: String, offset: Int, limit: Int, db: Database) throws -> [Person] {
        let needle = text.trimmed.lowercased()
        let page: [SQLValue] = [.int(Int64(limit)), .int(Int64(offset))]
        if needle.isEmpty {
            return try db.query("SELECT * FROM person ORDER BY id DESC LIMIT ? OFFSET ?", page).map { Person(row: $0) }
        }
        if needle.count < minimumSubstring {
            // Addresses are stored lowercased, so a range on the unique index finds a prefix; in
            // the index's order, so a page stops after its rows (newest first would sort them all).
            return try db.query("SELECT * FROM person WHERE email >= ? AND email < ? ORDER BY email LIMIT ? OFFSET ?",
                                [.text(needle), .text(needle + "\u{10FFFF}")] + page).map { Person(row: $0) }
        }
        // A phrase of the whole text: the trigram tokenizer then matches it as a substring.
        let phrase = "\"" + needle.replacingAll("\"", with: "\"\"") + "\""
        return try db.query("""
            SELECT p.* FROM person p JOIN (SELECT rowid FROM person_search WHERE person_search MATCH ? ORDER BY rowid DESC LIMIT ? OFFSET ?) m
            ON p.id = m.rowid ORDER BY p.id DESC
            """, [.text(phrase)] + page).map { Person(row: $0) }
    }
}
