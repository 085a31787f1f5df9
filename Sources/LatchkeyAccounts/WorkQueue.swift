import Glibc
import LatchkeyCore
import LatchkeyStore

/// Work a CGI leaves for after its answer has gone out, so the answer never waits on it.
public enum AfterResponse: Equatable, Sendable {
    /// The "Forgot password?" work: look up, throttle, issue a link, mail it.
    case forgot(email: String, locale: String, remoteAddr: String)
    /// Deliver these queued messages.
    case deliver([Int64])
    /// Send the outbound events that are due (the request recorded some).
    case events

    /// The one-line form stored in a queue file.
    public var encoded: String {
        switch self {
        case let .forgot(email, locale, remoteAddr): return "forgot\t" + email + "\t" + locale + "\t" + remoteAddr
        case .events: return "events"
        case let .deliver(ids):
            var line = "deliver\t"
            for (index, id) in ids.enumerated() { line += (index == 0 ? "" : ",") + String(id) }
            return line
        }
    }

    /// Parses `encoded`; nil for anything else.
    public init?(encoded: String) {
        let parts = encoded.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "forgot" where parts.count == 4: self = .forgot(email: parts[1], locale: parts[2], remoteAddr: parts[3])
        case "events" where parts.count == 1: self = .events
        case "deliver" where parts.count == 2: self = .deliver(parts[1].split(separator: ",").compactMap { Int64($0) })
        default: return nil
        }
    }
}

/// A folder of after-response jobs beside the database (`var/queue/`): a file for each job a
/// CGI left, and a journal of lines for each FastCGI worker (`WorkJournal`); and one lock that
/// at most one drainer holds.
///
/// A CGI writes its job here before answering, so the request survives whatever happens
/// next; then, if no drainer holds the lock, it forks one. However many requests arrive, one
/// process at a time works the queue, oldest first, and a job file is removed only once its
/// transaction has committed. `latchkey mail deliver` drains it too.
public struct WorkQueue {
    /// The queue's folder.
    public let folder: String

    /// The queue of the site whose database is `database`.
    public init(database: String) { folder = Path.parent(of: database) + "/queue" }

    /// Stores `work` as a new job file (written under a dot-name, then renamed into place,
    /// so a drainer never reads half a job). Creates the folder on first use.
    public func add(_ work: AfterResponse) throws {
        if mkdir(folder, 0o750) != 0 && errno != EEXIST { throw failure("cannot create the queue folder") }
        var stamp = timespec()
        clock_gettime(CLOCK_REALTIME, &stamp)
        // Names sort oldest first; pid and a random part keep concurrent CGIs apart. (The random
        // part needs no secrecy, so the standard generator does, without starting libsodium.)
        let name = String(stamp.tv_sec * 1_000_000_000 + Int(stamp.tv_nsec)) + "-" + String(getpid()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = folder + "/." + name, final = folder + "/" + name
        try FileTree.write(Array((work.encoded + "\n").utf8), to: temporary, mode: 0o600, exclusive: true)
        guard rename(temporary, final) == 0 else {
            let error = failure("cannot queue a job")
            unlink(temporary)
            throw error
        }
    }

    /// Job names waiting, oldest first.
    public func pending() -> [String] {
        ((try? FileTree.names(in: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// How many jobs wait: job files, and journal lines not yet worked.
    public func waiting() -> Int { pending().count + WorkJournal.unworkedLines(in: self) }

    /// The drainer's lock, if nobody else holds it: an open descriptor to pass to `drain`
    /// (a forked child inherits it), or nil.
    public func tryLock() -> Int32? {
        let fd = open(folder + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        // Made by root (an admin's `mail deliver`), it would lock the web server's drainers out.
        var owner = stat()
        if geteuid() == 0, stat(folder, &owner) == 0 { _ = fchown(fd, owner.st_uid, owner.st_gid) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return nil }
        return fd
    }

    /// Works every job, holding `lock` (from `tryLock`), and closes it. With `linger` (in
    /// milliseconds) it then waits that long for more jobs before it gives up the lock, so under
    /// load one drainer works what many requests queue, rather than each request forking its own.
    /// After letting go of the lock it looks once more: a CGI that queued a job while we held the
    /// lock did not start a drainer of its own. `report` hears about each job that failed. When
    /// the key or database cannot be used the jobs stay and draining stops, for the next drainer;
    /// any other failure is reported and the job removed, so one bad job cannot block the queue.
    /// Returns the number of failures.
    @discardableResult
    public func drain(lock: Int32, config: SiteConfig, linger: Int32 = 0, report: (String) -> Void) -> Int {
        defer { close(lock) }
        let watch = linger > 0 ? watchForJobs() : -1
        defer { if watch >= 0 { close(watch) } }
        var failures = 0
        var services: Services?
        sweep()
        var seen: [String: Int64] = [:]
        while true {
            let names = pending(), journals = WorkJournal.names(in: self)
            seen = WorkJournal.sizes(of: journals, in: self)
            if !names.isEmpty || !journals.isEmpty {
                do {
                    if services == nil { services = try Services(config: config) }
                } catch {
                    report("cannot open the site (\(error)); \(names.count) jobs and \(journals.count) journals wait")
                    return failures + 1
                }
                var worked = !names.isEmpty
                do {
                    for start in stride(from: 0, to: names.count, by: WorkQueue.batchSize) {
                        failures += try run(Array(names[start..<min(start + WorkQueue.batchSize, names.count)]),
                                            services: services!, report: report)
                    }
                    for journal in journals {
                        // One journal that cannot be worked must not hold up the others.
                        do {
                            if try WorkJournal.work(journal, in: self, services: services!, report: report) { worked = true }
                        } catch let error as StoreError {
                            throw error
                        } catch {
                            report("journal \(journal): \(error)")
                        }
                    }
                } catch {
                    report("jobs stay queued: \(error)")
                    return failures + 1
                }
                if worked { continue }
            }
            if watch >= 0, waitForJob(watch, milliseconds: linger) {
                // Let a few more arrive: under load each wake-up then works a batch, not one job.
                usleep(WorkQueue.gatherMicroseconds)
                continue
            }
            flock(lock, LOCK_UN)
            let more = !pending().isEmpty || WorkJournal.anyUnworked(in: self, since: seen)
            if !more || flock(lock, LOCK_EX | LOCK_NB) != 0 { return failures }
        }
    }

    /// Removes what a crash can leave and nothing else would: a job file or journal still under
    /// its temporary name an hour on (its writer died before the rename: the journal was still
    /// empty, and the job's request was never answered), and the offset of a journal that is
    /// gone. Only the lock's holder writes or removes offsets, so one without its journal is an
    /// orphan.
    func sweep(now: Int = time(nil)) {
        for name in (try? FileTree.names(in: folder)) ?? [] where name.hasPrefix(".") {
            let path = folder + "/" + name
            if name.hasPrefix(WorkJournal.prefix) && name.hasSuffix(".done") {
                if !FileTree.exists(String(path.dropLast(".done".count))) { unlink(path) }
                continue
            }
            let temporary = name.hasPrefix(".new" + WorkJournal.prefix) || name.dropFirst().first?.isNumber == true
            var info = stat()
            if temporary, stat(path, &info) == 0, info.st_mtim.tv_sec < now - 3600 { unlink(path) }
        }
    }

    /// An inotify descriptor that becomes readable when a job is renamed into the folder or a
    /// journal is written to; -1
    /// when the kernel will not give one (the drainer then does not linger).
    private func watchForJobs() -> Int32 {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return -1 }
        guard inotify_add_watch(fd, folder, UInt32(IN_MOVED_TO | IN_MODIFY)) >= 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Waits up to `milliseconds` for a job; true when one may have arrived.
    private func waitForJob(_ watch: Int32, milliseconds: Int32) -> Bool {
        var ready = pollfd(fd: watch, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, milliseconds) > 0 else { return false }
        var events = [UInt8](repeating: 0, count: 4096)
        while read(watch, &events, events.count) > 0 {}
        return true
    }

    /// How long a lingering drainer waits, once a job arrives, for others to join it.
    static let gatherMicroseconds: UInt32 = 5_000

    /// Jobs worked in one transaction: each commit costs more than a job's own statements.
    static let batchSize = 32

    /// Jobs `names`: their database work in one transaction (each job in its own savepoint, so
    /// one that fails is undone alone), then removal of their files, then their mail. A
    /// `StoreError` undoes the whole batch, whose files stay; so does a job file that cannot be
    /// removed, which would otherwise be worked again at once. Returns the number of jobs dropped.
    func run(_ names: [String], services: Services, report: (String) -> Void) throws -> Int {
        var read: [String] = [], lines: [String] = []
        for name in names {
            let bytes = FileBytes.read(folder + "/" + name, limit: 4096)
            if bytes == nil && !FileTree.exists(folder + "/" + name) { continue }
            let line = String(decoding: bytes ?? [], as: UTF8.self)
            read.append(name)
            lines.append(line.hasSuffix("\n") ? String(line.dropLast()) : line)
        }
        let (mail, reasons) = try services.db.write { try WorkQueue.performEach(lines, services: services) }
        let dropped = reasons.keys.sorted().map { (name: read[$0], reason: reasons[$0]!) }
        let done = read.indices.filter { reasons[$0] == nil }.map { read[$0] }
        for job in dropped { report("job \(job.name) dropped: \(job.reason)") }
        var stuck: (name: String, error: Int32)?
        for name in done + dropped.map(\.name) where unlink(folder + "/" + name) != 0 && errno != ENOENT {
            stuck = stuck ?? (name, errno)
        }
        WorkQueue.deliver(mail, services: services)
        if let stuck {
            throw CoreError.file(path: folder + "/" + stuck.name, reason: "cannot remove this worked job (" + String(cString: strerror(stuck.error)) + ")")
        }
        return dropped.count
    }

    /// Job lines' database work, in the caller's transaction, each in its own savepoint so one
    /// that fails is undone alone: the ids of the mail they queued, and why each line dropped
    /// failed (by index). A `StoreError` (the database itself failing) is thrown, undoing all.
    static func performEach(_ lines: [String], services: Services) throws -> (mail: [Int64], dropped: [Int: String]) {
        var mail: [Int64] = [], dropped: [Int: String] = [:]
        for (index, line) in lines.enumerated() {
            guard let work = AfterResponse(encoded: line) else {
                dropped[index] = "not a readable queued job"
                continue
            }
            do {
                mail += try services.db.write { try WorkQueue.perform(work, services: services) }
            } catch let error as StoreError {
                throw error
            } catch {
                dropped[index] = "\(error)"
            }
        }
        return (mail, dropped)
    }

    /// `work`'s database part; returns the ids of the mail it queued.
    public static func perform(_ work: AfterResponse, services: Services) throws -> [Int64] {
        switch work {
        case let .forgot(email, locale, remoteAddr):
            return try Recovery.requestFromWeb(email: email, language: locale, remoteAddr: remoteAddr, services: services, now: Clock.now())
        case let .deliver(queued):
            return queued
        case .events:
            return []
        }
    }

    /// Sends queued mail now. A failed delivery stays in the email history, marked for retry by
    /// `latchkey mail deliver`. (Outbound events go after the queue is empty: `WebhookSender.sendAll`.)
    public static func deliver(_ ids: [Int64], services: Services) {
        _ = try? services.mailer.deliver(ids: ids, now: Clock.now())
    }

    private func failure(_ reason: String) -> CoreError {
        CoreError.file(path: folder, reason: reason + " (" + String(cString: strerror(errno)) + ")")
    }
}
