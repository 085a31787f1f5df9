import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// The CGI pipeline: environment → request → handler → store/mail → response → after-work.
public enum CGIApp {
    /// The endpoint named `name` (the executable's name), if there is one.
    static func endpoint(_ name: String) -> ((Context) throws -> Reply)? {
        switch name {
        case "forgot": ForgotEndpoint.handle
        case "reset": ResetEndpoint.handle
        case "login": LoginEndpoint.handle
        case "logout": LogoutEndpoint.handle
        case "account": AccountEndpoint.handle
        case "confirm-email": ConfirmEmailEndpoint.handle
        case "session": SessionEndpoint.handle
        case "members": MembersEndpoint.handle
        case "admin": AdminEndpoint.handle
        case "api": APIEndpoint.handle
        case "stripe": StripeEndpoint.handle
        default: nil
        }
    }

    /// The environment variables the CGIs read (RFC 3875 meta-variables, a few request
    /// headers, and Latchkey's own).
    public static let variables = CGIRequest.variables + ["LATCHKEY_CONFIG"]

    /// Answers one request as endpoint `name`; returns the exit status.
    public static func main(name: String, environment: [String: String]) -> Int32 {
        let request = CGIRequest(environment: environment)
        let body = BodyState()
        var services: ServicesOnce?
        let (reply, config) = respond(name, request, body: body, load: {
            guard let path = environment["LATCHKEY_CONFIG"], !path.isEmpty else {
                throw HTTPError(500, "LATCHKEY_CONFIG is not set in the CGI environment")
            }
            return try SiteConfig.load(file: path)
        }, services: { config in
            let once = ServicesOnce(config)
            services = once
            return once
        })
        if !body.read, let length = request.contentLength, length > 0, length <= BodyState.drainLimit { drain(length) }
        // Queue the after-work and start its drainer before answering: lighttpd sends SIGTERM
        // to a CGI the moment it has read the whole answer. The drainer holds none of our
        // pipes, so the server still sees the answer end when we exit, and does not wait.
        // Events the request recorded go out after the answer too; any job's drainer sends them.
        if let after = reply.after ?? (services?.recordedEvents == true ? .events : nil), let config {
            services?.close()
            queueAfterResponse(after, config: config)
        }
        // A request that wrote closes its database after answering (see `finish`). lighttpd sends
        // SIGTERM the moment it has read the answer, so from before the write it is ignored.
        if services?.wrote == true { signal(SIGTERM, SIG_IGN) }
        reply.response.write()
        services?.finish()
        return 0
    }

    /// The step both modes share: the site from `load`, endpoint `name`'s handler, and every
    /// failure turned into its error page. `services` gives the database for the site.
    static func respond(_ name: String, _ request: CGIRequest, body: BodyState, load: () throws -> SiteConfig,
                        services: (SiteConfig) -> ServicesOnce) -> (Reply, SiteConfig?) {
        var config: SiteConfig?
        do {
            let loaded = try load()
            config = loaded
            guard let handler = endpoint(name) else { throw HTTPError(404, "no endpoint named \(name.prefix(40))") }
            let once = services(loaded)
            return (try handler(Context(request: request, config: loaded, now: Clock.now(), openServices: once.get, body: body)), loaded)
        } catch let error as HTTPError {
            log(name, error.status >= 500 ? "error" : "refused", error.reason)
            return (Reply(ErrorPage.response(error, locale: nil, config: config)), config)
        } catch let error as StoreError {
            log(name, "error", "\(error)")
            return (Reply(ErrorPage.response(HTTPError(503, "\(error)"), locale: nil, config: config)), config)
        } catch {
            log(name, "error", "\(error)")
            return (Reply(ErrorPage.response(HTTPError(500, "\(error)"), locale: nil, config: config)), config)
        }
    }

    /// Reads and discards `count` bytes of standard input.
    static func drain(_ count: Int) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var left = count
        while left > 0 {
            let n = read(0, &buffer, min(left, buffer.count))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            left -= n
        }
    }

    /// One line to the web server's error log (for the worker: `latchkey-worker.log`).
    static func log(_ name: String, _ level: String, _ message: String) {
        let line = Array("\(Clock.readable(Clock.now())) latchkey \(name): \(level): \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

/// Opens the key and database on first use only, so an endpoint that never needs them
/// (forgot) never pays for them.
final class ServicesOnce {
    private let config: SiteConfig
    private var services: Services?
    /// The connection's counters when the request began: a FastCGI worker keeps one open for
    /// many requests, and each asks what it alone did.
    private var changesBefore = 0, eventsBefore = 0

    init(_ config: SiteConfig) { self.config = config }

    /// The database, if this process has opened it.
    var opened: Services? { services }

    /// Marks the start of a request on a connection kept open between requests.
    func beginRequest() {
        changesBefore = services?.db.totalChanges ?? 0
        eventsBefore = services?.db.eventsRecorded ?? 0
    }

    /// Closes the database, if it was opened: before a fork, which an open connection must not cross.
    func close() { services = nil }

    /// True when this request recorded outbound events.
    var recordedEvents: Bool { (services?.db.eventsRecorded ?? 0) > eventsBefore }

    /// True when the database was opened and this request changed rows in it.
    var wrote: Bool { (services?.db.totalChanges ?? 0) > changesBefore }

    /// After the answer. A connection that wrote is closed once the server has the whole answer:
    /// closing checkpoints the commit into the database file, two fsyncs the customer need not
    /// wait for (the commit itself is already in the WAL, visible to every other process). One
    /// that only read is left to the process's exit, which drops its locks: it has nothing of its
    /// own to checkpoint (the next writer to close copies whatever is in the WAL), and freeing the
    /// schema and statements would only cost time.
    func finish() {
        guard let open = services else { return }
        let wrote = self.wrote
        services = nil
        guard wrote else {
            _ = Unmanaged.passRetained(open)
            return
        }
        // `open` is the last reference: it is released, and the database closed, after this.
        withExtendedLifetime(open) { Subprocess.endAnswer(errorLog: CGIApp.workerLog(config)) }
    }

    func get() throws -> Services {
        if let services { return services }
        let opened = try Services(config: config)
        guard try opened.db.isCurrent() else {
            throw HTTPError(503, "database schema is not current: run `latchkey init` or any admin command to migrate")
        }
        services = opened
        return opened
    }
}
