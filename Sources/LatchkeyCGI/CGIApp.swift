import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// The CGI pipeline: environment → request → handler → store/mail → response → after-work.
public enum CGIApp {
    /// The endpoints, by executable name.
    static let endpoints: [String: @Sendable (Context) throws -> Reply] = [
        "forgot": ForgotEndpoint.handle,
        "reset": ResetEndpoint.handle,
        "login": LoginEndpoint.handle,
        "logout": LogoutEndpoint.handle,
        "account": AccountEndpoint.handle,
        "session": SessionEndpoint.handle,
        "members": MembersEndpoint.handle,
    ]

    /// The argument that makes the executable the detached after-response worker.
    public static let afterResponseFlag = "--after-response"

    /// Answers one request as endpoint `name`; returns the exit status.
    public static func main(name: String, environment: [String: String]) -> Int32 {
        let request = CGIRequest(environment: environment)
        var config: SiteConfig?
        var reply: Reply
        let body = BodyState()
        do {
            guard let path = environment["LATCHKEY_CONFIG"], !path.isEmpty else {
                throw HTTPError(500, "LATCHKEY_CONFIG is not set in the CGI environment")
            }
            let loaded = try SiteConfig.load(file: path)
            config = loaded
            guard let handler = endpoints[name] else { throw HTTPError(404, "no endpoint named \(name)") }
            reply = try handler(Context(request: request, config: loaded, now: Clock.now(), openServices: ServicesOnce(loaded).get, body: body))
        } catch let error as HTTPError {
            log(name, error.status >= 500 ? "error" : "refused", error.reason)
            reply = Reply(ErrorPage.response(error, locale: nil, config: config))
        } catch let error as StoreError {
            log(name, "error", "\(error)")
            reply = Reply(ErrorPage.response(HTTPError(503, "\(error)"), locale: nil, config: config))
        } catch {
            log(name, "error", "\(error)")
            reply = Reply(ErrorPage.response(HTTPError(500, "\(error)"), locale: nil, config: config))
        }
        if !body.read, let length = request.contentLength, length > 0, length <= BodyState.drainLimit { drain(length) }
        // Start the worker before answering: lighttpd sends SIGTERM to a CGI the moment it has
        // read the whole answer. The worker holds none of our pipes, so the server still sees
        // the answer end when we exit, and does not wait for the work.
        if let after = reply.after, let config { startAfterResponse(after, config: config) }
        reply.response.write()
        return 0
    }

    /// Hands `work` to a detached copy of this executable. Apache waits for every process
    /// holding the CGI's pipes, so the worker gets /dev/null and its own session. If it cannot
    /// be started the work is done here, late but not lost.
    static func startAfterResponse(_ work: AfterResponse, config: SiteConfig) {
        let environment = ["LATCHKEY_CONFIG": config.file, "LATCHKEY_AFTER": work.encoded]
        do {
            // The worker's errors go beside the database: nobody reads a detached process's stderr.
            try Subprocess.detach(Subprocess.currentExecutable(), [afterResponseFlag], environment: environment,
                                  errorLog: Path.parent(of: config.resolve(config.database)) + "/latchkey-worker.log")
        } catch {
            log("after-response", "error", "cannot start the worker (\(error)); working inline")
            _ = runAfterResponse(environment: environment)
        }
    }

    /// The detached worker: does the work named in `LATCHKEY_AFTER`. Failures stay recorded in
    /// the email history for `latchkey mail deliver`.
    public static func runAfterResponse(environment: [String: String]) -> Int32 {
        guard let path = environment["LATCHKEY_CONFIG"], let encoded = environment["LATCHKEY_AFTER"],
              let work = AfterResponse(encoded: encoded) else { return 2 }
        do {
            let services = try Services(config: try SiteConfig.load(file: path))
            let now = Clock.now()
            let ids: [Int64]
            switch work {
            case let .forgot(email, locale, remoteAddr):
                ids = try Recovery.requestFromWeb(email: email, language: locale, remoteAddr: remoteAddr, services: services, now: now)
            case let .deliver(queued):
                ids = queued
            }
            for id in ids { try services.mailer.deliver(id: id, now: Clock.now()) }
            return 0
        } catch {
            log("after-response", "error", "\(error)")
            return 1
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

    init(_ config: SiteConfig) { self.config = config }

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
