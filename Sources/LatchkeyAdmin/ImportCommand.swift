import FoundationEssentials
import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `import csv FILE [--offer SLUG] [--dry-run]`: people from a spreadsheet, idempotently.
///
/// Rows are checked before anything is written, so a bad row is reported by its line number
/// and skipped whole. Without `--offer` new people are contacts; with it they are customers
/// with access to that offer. No email is sent: `welcome resend` does that per person.
enum ImportCommand {
    /// Rows written per transaction: large enough to be fast, small enough to keep the
    /// write lock short for the web.
    static let batchSize = 500

    struct Counts { var created = 0, updated = 0, unchanged = 0, skipped = 0 }

    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["offer", "dry-run"])
        let file = try invocation.word(0, "FILE")
        guard let data = FileManager.default.contents(atPath: file) else { throw CommandError("cannot read \(file)") }
        guard let text = String(validating: data, as: UTF8.self) else { throw CommandError("\(file) is not UTF-8 text") }
        let records = CSV.parse(text)
        guard let header = records.first else { throw CommandError("\(file) is empty") }
        let columns = header.fields.map { $0.trimmed.lowercased() }
        guard let emailColumn = columns.firstIndex(of: "email") else { throw CommandError("\(file): the first line must name an 'email' column") }
        let nameColumn = columns.firstIndex(of: "name")
        let extra = columns.enumerated().filter { $0.offset != emailColumn && $0.offset != nameColumn }.map(\.element)
        if !extra.isEmpty { Console.err("warning: ignoring columns: \(extra.joined(separator: ", "))") }
        let services = try invocation.services()
        let offer = invocation.arguments.options["offer"]
        if let offer, try services.db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(offer)]).isEmpty {
            throw CommandError("no offer '\(offer)' (see latchkey offer list)")
        }
        let dryRun = invocation.arguments.flags.contains("dry-run")
        let rows = Array(records.dropFirst())
        let progress = Progress(total: rows.count, visible: isatty(1) == 1)
        var counts = Counts()
        var seen: [String: Int] = [:]
        let now = Clock.now()
        for batch in stride(from: 0, to: rows.count, by: batchSize).map({ rows[$0..<min($0 + batchSize, rows.count)] }) {
            let apply = {
                for row in batch {
                    try importRow(row, emailColumn: emailColumn, nameColumn: nameColumn, offer: offer, dryRun: dryRun,
                                  operator: invocation.operator, db: services.db, now: now, counts: &counts, seen: &seen)
                    progress.advance()
                }
            }
            if dryRun { try apply() } else { try services.db.write(apply) }
        }
        progress.finish()
        Console.out("\(dryRun ? "Dry run, nothing written: " : "Imported ")\(rows.count) rows: \(counts.created) created, "
                    + "\(counts.updated) updated, \(counts.unchanged) unchanged, \(counts.skipped) skipped")
    }

    static func importRow(_ row: CSV.Record, emailColumn: Int, nameColumn: Int?, offer: String?, dryRun: Bool,
                          operator actor: String, db: Database, now: Int64, counts: inout Counts, seen: inout [String: Int]) throws {
        func skip(_ reason: String) { Console.err("line \(row.line): \(reason); skipped"); counts.skipped += 1 }
        guard emailColumn < row.fields.count else { return skip("no email") }
        let email = Person.normalize(row.fields[emailColumn])
        guard Person.isPlausibleEmail(email) else { return skip("'\(printable(row.fields[emailColumn].prefix(80)))' is not an email address") }
        if let first = seen[email] { return skip("\(email) is already on line \(first)") }
        seen[email] = row.line
        let name = nameColumn.flatMap { $0 < row.fields.count ? row.fields[$0].trimmed : nil } ?? ""
        guard !name.hasControlCharacters, name.count <= 200 else { return skip("the name has control characters or is too long") }
        guard let existing = try db.person(email: email) else {
            counts.created += 1
            if dryRun { return }
            let person = try db.insertPerson(email: email, name: name, kind: offer == nil ? "contact" : "customer", now: now)
            try db.audit(AuditEvent(actor: actor, action: "person.created", personID: person.id, subject: email, detail: "import"), now: now)
            if let offer { try Access.grant(person: person, offer: offer, by: actor, db: db, now: now) }
            return
        }
        var changed = false
        if !name.isEmpty, existing.name != name {
            changed = true
            if !dryRun { try db.execute("UPDATE person SET name = ?, updated_at = ? WHERE id = ?", [.text(name), .int(now), .int(existing.id)]) }
        }
        if let offer, try db.query("""
            SELECT 1 FROM access_grant g JOIN offer o ON o.id = g.offer_id WHERE g.person_id = ? AND o.slug = ? AND g.revoked_at IS NULL
            """, [.int(existing.id), .text(offer)]).isEmpty {
            changed = true
            if !dryRun { try Access.grant(person: existing, offer: offer, by: actor, db: db, now: now) }
        }
        if changed { counts.updated += 1 } else { counts.unchanged += 1 }
    }
}

/// `text` with line breaks and other control characters shown as `\n`-style escapes, so one
/// problem stays on one line.
func printable<S: StringProtocol>(_ text: S) -> String {
    String(text).unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
}

/// A progress bar on a terminal; silent when output goes to a file or pipe.
final class Progress {
    let total: Int
    let visible: Bool
    private var done = 0
    private var shown = -1

    init(total: Int, visible: Bool) {
        self.total = total
        self.visible = visible
    }

    func advance() {
        done += 1
        guard visible, total > 0 else { return }
        let percent = done * 100 / total
        guard percent != shown else { return }
        shown = percent
        let filled = percent * 30 / 100
        Console.raw("\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] \(done)/\(total)")
    }

    func finish() { if visible && total > 0 { Console.raw("\n") } }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
enum CSV {
    struct Record { let line: Int; let fields: [String] }

    static func parse(_ text: String) -> [Record] {
        var records: [Record] = []
        var fields: [String] = [], field = "", inQuotes = false, line = 1, startLine = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        func endRecord() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].trimmed.isEmpty) { records.append(Record(line: startLine, fields: fields)) }
            fields = []; field = ""
        }
        while let scalar = pending {
            pending = iterator.next()
            if inQuotes {
                if scalar == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = iterator.next() } else { inQuotes = false }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"": inQuotes = true
            case ",": fields.append(field); field = ""
            case "\r": if pending != "\n" { endRecord(); line += 1; startLine = line }
            case "\n": endRecord(); line += 1; startLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
