import CLinux
import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The executables as FastCGI responders: started with a listening socket on descriptor 0 (by
/// Apache mod_fcgid, lighttpd `bin-path`, or `latchkey serve`), a worker accepts one connection
/// at a time and answers every endpoint by its URL. What lives between requests is the site
/// (config, key, one database connection, warmed statements); everything a request brings is
/// its own. After each answer the worker checks it may go on (SQLite idle, config and schema
/// unchanged, under its request and memory limits) and otherwise exits, to be replaced.
public final class FastCGIWorker {
    /// True when descriptor 0 is a listening socket (FastCGI 1.0 §2.2: `getpeername` fails
    /// with `ENOTCONN`). A connected socket (mod_cgid) or a pipe is plain CGI.
    public static func isListening() -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(0, $0, &length) }
        }
        return result == -1 && errno == ENOTCONN
    }

    /// The site as this worker last loaded it, with the file's identity when it was read.
    private final class Site {
        let path: String
        let stamp: FileStamp
        let config: SiteConfig
        let services: ServicesOnce
        /// Where this worker's after-response jobs go, once the first has come (`journal()`).
        private(set) var openJournal: WorkJournal?
        /// The journal, made on first use; nil when it cannot be (jobs then go to files).
        func journal() -> WorkJournal? {
            if openJournal == nil { openJournal = WorkJournal(queue: WorkQueue(database: config.resolve(config.database))) }
            return openJournal
        }
        init(path: String, stamp: FileStamp, config: SiteConfig) {
            self.path = path
            self.stamp = stamp
            self.config = config
            services = ServicesOnce(config)
        }
    }

    private let fallbackName: String
    private let processConfig: String?
    private var site: Site?
    private var answered = 0
    /// When the config file was last looked at (monotonic seconds): at most once a second.
    private var configChecked: Int64 = 0
    /// `/proc/self/statm`, kept open and read again after each answer.
    private let statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    /// The connection's read buffer, kept for the worker's life (wiped as far as it was used).
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    /// Under `latchkey serve` a worker that must be replaced exits and the supervisor starts
    /// another; under mod_fcgid or lighttpd it starts itself again in place (`execv`), so the
    /// server never sees a worker missing.
    private let supervised: Bool
    /// Why this worker stops after the request in hand, if it must.
    private var stopReason: String?

    /// A worker named `name` (the endpoint when a request's URL names none); `environment` is
    /// the process's (`LATCHKEY_CONFIG`, when the server sends no such param).
    public init(name: String, environment: [String: String]) {
        fallbackName = name
        processConfig = environment["LATCHKEY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        supervised = environment["LATCHKEY_SERVE"] == "1"
    }

    /// Accepts and answers until told to stop (SIGTERM, SIGINT, SIGHUP, SIGUSR1: the request
    /// in hand is finished first) or until it must be replaced. Returns the exit status.
    public func run() -> Int32 {
        var stops = sigset_t()
        sigemptyset(&stops)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&stops, signal) }
        sigprocmask(SIG_BLOCK, &stops, nil)
        let stopSignal = signalfd(-1, &stops, Int32(SFD_CLOEXEC))
        guard stopSignal >= 0 else { return fail("signalfd: \(String(cString: strerror(errno)))") }
        // A server that hangs up mid-answer must not kill the worker.
        signal(SIGPIPE, SIG_IGN)
        // The site now, so its read timeout holds from the first connection.
        _ = currentSite(processConfig)
        // Shared with other workers: accept only when epoll says so, and never block in it.
        // EPOLLEXCLUSIVE wakes one waiting worker per connection, not every one.
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)
        let events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0, latchkey_epoll_add(events, 0, 1) == 0, latchkey_epoll_add(events, stopSignal, 0) == 0 else {
            return fail("epoll: \(String(cString: strerror(errno)))")
        }
        while stopReason == nil {
            let ready = latchkey_epoll_wait(events, 0)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return fail("epoll_wait: \(String(cString: strerror(errno)))") }
            if ready & 2 != 0 {
                // Told to stop. A connection this wake-up was also for is still answered:
                // EPOLLEXCLUSIVE woke this worker alone for it, and another might not wake
                // until the next one arrives.
                if ready & 1 != 0 { acceptAndServe(stopSignal) }
                break
            }
            acceptAndServe(stopSignal)
            FastCGIWorker.reapDrainers()
        }
        FastCGIWorker.reapDrainers()
        guard let stopReason else { return 0 }
        CGIApp.log("fastcgi", "notice", "worker \(getpid()) replaced after \(answered) requests: \(stopReason)")
        if !supervised { restartInPlace() }
        return 0
    }

    /// Takes one connection waiting on the listening socket, if another worker has not, and
    /// serves it to its end.
    private func acceptAndServe(_ stopSignal: Int32) {
        let connection = accept(0, nil, nil)
        guard connection >= 0 else { return }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        FastCGIConnection(fd: connection, stopSignal: stopSignal, readTimeout: Int32(readTimeoutSeconds * 1000))
            .serve(buffer: &buffer) { request, output in answer(request, connection: connection, output: &output) }
        close(connection)
    }

    /// Collects drainers that have finished. A worker lives on (under lighttpd and mod_fcgid
    /// it even starts itself again in place), so the drainers it forks would otherwise stay as
    /// zombies against the service's process limit. Nothing else of a worker's is left running
    /// between requests: the programs a request runs are waited for by the request.
    static func reapDrainers() {
        while waitpid(-1, nil, WNOHANG) > 0 {}
    }

    /// Runs this executable again in this process, on the same listening socket (descriptor 0,
    /// not close-on-exec): a fresh image, settings and database connection, the same process id.
    private func restartInPlace() {
        let argv = CommandLine.unsafeArgv
        let named = argv[0].map { String(cString: $0) } ?? ""
        let program = named.hasPrefix("/") ? named : "/proc/self/exe"
        execv(program, argv)
        CGIApp.log("fastcgi", "error", "cannot start \(program) again: \(String(cString: strerror(errno)))")
    }

    private var readTimeoutSeconds: Int { max(1, Int(site?.config.fastcgi.readTimeout.seconds ?? 10)) }

    /// One request, as CGIApp.main answers it under CGI; true when the worker may take another.
    private func answer(_ request: FastCGIAssembler.Request, connection: Int32, output: inout FastCGIOutput) -> Bool {
        var environment = request.environment
        environment["FCGI_ROLE"] = request.role == .authorizer ? "AUTHORIZER" : "RESPONDER"
        let path = environment["LATCHKEY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? processConfig
        let current = currentSite(path)
        var name = fallbackName
        if request.role == .authorizer {
            name = "session"
        } else if let config = current?.config {
            name = FastCGIWorker.route(&environment, config: config) ?? fallbackName
        }
        var cgiRequest = CGIRequest(environment: environment)
        cgiRequest.body = request.body
        current?.services.beginRequest()
        var (reply, config): (Reply, SiteConfig?)
        if let refusal = request.refusal {
            CGIApp.log(name, "refused", refusal.reason)
            (reply, config) = (Reply(ErrorPage.response(HTTPError(refusal.status, refusal.reason), locale: nil, config: current?.config)), current?.config)
        } else {
            (reply, config) = CGIApp.respond(name, cgiRequest, body: BodyState(), load: {
                guard let path else { throw HTTPError(500, "LATCHKEY_CONFIG is set neither as a FastCGI param nor in the environment") }
                guard let current else { return try SiteConfig.load(file: path) }
                return current.config
            }, services: { config in current?.services ?? ServicesOnce(config) })
        }
        // The after-work is queued before the answer, as a CGI does, so a worker killed right
        // after answering loses no request; the drainer is started after it.
        let after = reply.after ?? (current?.services.recordedEvents == true ? .events : nil)
        var queued = false
        if let config, let after { queued = CGIApp.enqueue(after, config: config, journal: current?.journal()) }
        reply.response.write(sendfileTo: nil) { output.send($0) }
        _ = output.end()
        answered += 1
        check(current)
        if let config, let after {
            if queued {
                // No SQLite connection may cross a fork, even unused: the child would inherit this
                // process's record of the locks it holds. The next request opens it again. The
                // drainer closes the journal, whose lock it would otherwise hold. Both are the
                // worker's site's, even when this request found the config file unreadable.
                CGIApp.startDrainer(config: config, connection: connection, journal: site?.openJournal,
                                    beforeFork: { site?.services.close() })
            } else {
                CGIApp.workInline(after, config: config)
            }
        }
        return stopReason == nil
    }

    /// The site for `path`, loaded again when the file changed (and the worker then replaced
    /// after this request, so nothing it built from the old settings lives on).
    private func currentSite(_ path: String?) -> Site? {
        guard let path else { return nil }
        let second = Clock.monotonicMilliseconds() / 1000
        if let site, site.path == path, second == configChecked { return site }
        configChecked = second
        guard let stamp = FileStamp(path) else { return nil }
        if let site, site.path == path {
            if site.stamp == stamp { return site }
            stopReason = "the config file changed"
        }
        guard let config = try? SiteConfig.load(file: path) else { return nil }
        let loaded = Site(path: path, stamp: stamp, config: config)
        site = loaded
        return loaded
    }

    /// Whether the worker may take another request: its database connection idle, schema
    /// unchanged, within `max_requests` and `max_memory`.
    private func check(_ current: Site?) {
        if let current, let services = current.services.opened {
            if !services.db.isIdle {
                stopReason = "a request left SQLite outside autocommit or a statement running"
            } else if services.db.schemaChangesSeen > 0 {
                stopReason = "the database schema changed"
            }
        }
        let limits = current?.config.fastcgi ?? SiteConfig.FastCGI()
        if answered >= limits.maxRequests { stopReason = "max_requests (\(limits.maxRequests))" }
        let resident = residentBytes()
        if resident > limits.maxMemory { stopReason = "resident \(resident >> 10) KiB above max_memory (\(limits.maxMemory >> 10) KiB)" }
    }

    /// The endpoint a request's URL names (`SCRIPT_NAME` + `PATH_INFO`, however the server cut
    /// them), with `SCRIPT_NAME` and `PATH_INFO` set as the CGI would see them; nil when the
    /// URL is under neither the CGI prefix nor the members path.
    static func route(_ environment: inout [String: String], config: SiteConfig) -> String? {
        let path = (environment["SCRIPT_NAME"] ?? "") + (environment["PATH_INFO"] ?? "")
        if path.hasPrefix(config.cgiPrefix) {
            let rest = path.dropFirst(config.cgiPrefix.count)
            let name = String(rest.prefix { $0 != "/" })
            environment["SCRIPT_NAME"] = config.cgiPrefix + name
            environment["PATH_INFO"] = String(rest.dropFirst(name.count))
            return name
        }
        let members = String(config.membersPath.dropLast())
        if path == members || path.hasPrefix(config.membersPath) {
            environment["SCRIPT_NAME"] = members
            environment["PATH_INFO"] = String(path.dropFirst(members.count))
            return "members"
        }
        return nil
    }

    /// This process's resident set size (`/proc/self/statm`, read again), or 0 when unreadable.
    func residentBytes() -> Int {
        var text = [UInt8](repeating: 0, count: 128)
        let n = pread(statm, &text, text.count, 0)
        guard n > 0 else { return 0 }
        let fields = text[..<n].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    private func fail(_ message: String) -> Int32 {
        CGIApp.log("fastcgi", "error", message)
        return 1
    }
}

/// A file's identity and version, to notice it was replaced or rewritten.
struct FileStamp: Equatable {
    let device: UInt64, inode: UInt64, size: Int64, modified: Int64, modifiedNanoseconds: Int

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }
}
