import Glibc
import LatchkeyCore

/// A FastCGI worker's after-response jobs: one file of job lines (`var/queue/.journal-PID-N`)
/// that the worker appends to for its whole life, rather than a new file per job.
///
/// A job file per request is right for a CGI, which lives for one request; a worker answering
/// thousands a second would spend most of its time in the file system allocating and freeing
/// inodes (measured: ~0.45 ms of kernel time a job with four workers). Appending a line is one
/// `write`. The worker holds a shared `flock` on its journal while it lives; a drainer works the
/// complete lines past the offset it last recorded (`.journal-PID-N.done`, written after each
/// commit, so a crash between the two redoes jobs rather than losing them, as with job files),
/// and removes the journal once its writer is gone and every line is worked.
public final class WorkJournal {
    /// The journal's descriptor (open for appending, holding the writer's shared lock).
    public private(set) var descriptor: Int32
    private let folder: String
    /// How much this journal holds; past `rotateAt` the next job starts a new one, so a
    /// long-lived worker's journal never grows without end (the old one is removed once worked).
    private var size = 0
    /// Set after a write that failed part-way: the journal takes no more.
    private var broken = false

    /// A new journal in `queue`'s folder, or nil when one cannot be made (the caller then
    /// queues job files instead).
    public init?(queue: WorkQueue) {
        guard let fd = WorkJournal.create(in: queue.folder) else { return nil }
        folder = queue.folder
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// A new journal, locked before it appears under its name: a drainer that found it
    /// unlocked and empty would take its writer for gone, and remove it.
    private static func create(in folder: String) -> Int32? {
        if mkdir(folder, 0o750) != 0 && errno != EEXIST { return nil }
        let name = prefix + String(getpid()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = folder + "/.new" + name, final = folder + "/" + name
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0, rename(temporary, final) == 0 else {
            unlink(temporary)
            close(fd)
            return nil
        }
        return fd
    }

    /// Appends `work` as one line in one `write`; false when it could not be written whole.
    public func append(_ work: AfterResponse) -> Bool {
        guard !broken else { return false }
        if size >= WorkJournal.rotateAt, let next = WorkJournal.create(in: folder) {
            close(descriptor)
            (descriptor, size) = (next, 0)
        }
        let line = Array((work.encoded + "\n").utf8)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written == line.count {
            size += written
            return true
        }
        // A torn line would run into the next job's: cut it off, and write no more here.
        broken = true
        if written > 0 { _ = ftruncate(descriptor, off_t(size)) }
        return false
    }

    /// A journal's size after which a worker starts another.
    static let rotateAt = 1 << 20

    /// Journal files begin with this (a dot, so they are never taken for job files).
    static let prefix = ".journal-"

    /// The most of a journal read at once; a job line is far shorter.
    static let chunk = 1 << 16

    /// Journals in `queue`, oldest writer first by name order.
    static func names(in queue: WorkQueue) -> [String] {
        ((try? FileTree.names(in: queue.folder)) ?? []).filter { $0.hasPrefix(prefix) && !$0.hasSuffix(".done") }.sorted()
    }

    /// The size now of each journal in `names`, to tell later whether it has grown.
    static func sizes(of names: [String], in queue: WorkQueue) -> [String: Int64] {
        var sizes: [String: Int64] = [:]
        for name in names {
            var info = stat()
            if stat(queue.folder + "/" + name, &info) == 0 { sizes[name] = Int64(info.st_size) }
        }
        return sizes
    }

    /// True when some journal in `queue` holds bytes not yet worked. With `since` (sizes from
    /// `sizes(of:in:)`, taken before the last pass), only a journal that has changed since counts: one
    /// the last pass could not work (unreadable, or a torn tail its writer still holds) must not
    /// keep a drainer looking at it for ever.
    static func anyUnworked(in queue: WorkQueue, since: [String: Int64]? = nil) -> Bool {
        names(in: queue).contains { name in
            var info = stat()
            guard stat(queue.folder + "/" + name, &info) == 0, Int64(info.st_size) > (worked(name, in: queue) ?? 0) else { return false }
            return since.map { $0[name] != Int64(info.st_size) } ?? true
        }
    }

    /// How many complete lines of the journals in `queue` are not yet worked.
    static func unworkedLines(in queue: WorkQueue) -> Int {
        names(in: queue).reduce(0) { total, name in
            let bytes = FileBytes.read(queue.folder + "/" + name, limit: 1 << 26) ?? []
            let offset = min(Int(worked(name, in: queue) ?? 0), bytes.count)
            return total + bytes[offset...].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
    }

    /// How far `name` has been worked: its `.done` file, 0 when there is none, nil when it cannot
    /// be read (then the journal waits: taking it for 0 would work every line again).
    static func worked(_ name: String, in queue: WorkQueue) -> Int64? {
        let fd = open(queue.folder + "/" + name + ".done", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT ? 0 : nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return count == 0 ? 0 : nil }
        return Int64(String(decoding: bytes[..<count], as: UTF8.self).trimmed)
    }

    /// Records that `name` has been worked to `offset`: one fixed-width `pwrite` over the same
    /// bytes, so the record is never seen empty or half-replaced.
    /// It belongs to the journal's owner (`journal`, open): a drainer run as root (an admin's
    /// `mail deliver`) must not leave a record the web server's drainers cannot update.
    static func record(_ offset: Int64, for name: String, in queue: WorkQueue, journal: Int32) throws {
        var digits = String(offset)
        digits = String(repeating: "0", count: max(0, 20 - digits.count)) + digits
        let path = queue.folder + "/" + name + ".done"
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CoreError.file(path: path, reason: "cannot record the journal's progress") }
        defer { close(fd) }
        var owner = stat()
        if geteuid() == 0, fstat(journal, &owner) == 0 { _ = fchown(fd, owner.st_uid, owner.st_gid) }
        let bytes = Array(digits.utf8)
        guard bytes.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw CoreError.file(path: path, reason: "cannot record the journal's progress")
        }
    }

    /// Works up to `WorkQueue.batchSize` complete lines of journal `name` past its offset, in
    /// one transaction, then records the new offset and sends their mail. When nothing is left
    /// and the writer is gone (its shared lock released), removes the journal; a half-written
    /// last line (its writer died mid-write) is reported and dropped then. True when it did
    /// anything, so the caller looks again.
    static func work(_ name: String, in queue: WorkQueue, services: Services, report: (String) -> Void) throws -> Bool {
        let path = queue.folder + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let offset = worked(name, in: queue) else {
            report("journal \(name): cannot read how far it was worked; it waits")
            return false
        }
        // Most looks find nothing new in a live worker's journal: then nothing is read.
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: Int(max(0, min(Int64(chunk), Int64(info.st_size) - offset))))
        let count = buffer.isEmpty ? 0 : max(0, buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) })
        var lines: [String] = [], end = 0
        while lines.count < WorkQueue.batchSize, let newline = buffer[end..<count].firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: buffer[end..<newline], as: UTF8.self))
            end = newline + 1
        }
        if end == 0 && count == chunk {
            // A chunk with no line end at all is not a job: skipped whole, so it cannot stall the journal.
            report("journal \(name): \(chunk) bytes with no line end skipped")
            end = chunk
        }
        if end > 0 {
            let (mail, dropped) = try services.db.write { try WorkQueue.performEach(lines, services: services) }
            // Committed: its mail goes out even if the offset cannot be recorded.
            defer { WorkQueue.deliver(mail, services: services) }
            for reason in dropped.values { report("journal \(name): job dropped: \(reason)") }
            try record(offset + Int64(end), for: name, in: queue, journal: fd)
            return true
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        guard fstat(fd, &info) == 0 else { return false }
        // Lines its writer appended just before it went are worked first.
        if Int64(info.st_size) > offset + Int64(count) { return true }
        if count > 0 { report("journal \(name): a half-written last job (\(count) bytes) dropped") }
        unlink(path)
        unlink(path + ".done")
        return true
    }
}
