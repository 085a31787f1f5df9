import FoundationEssentials
import Glibc
import LatchkeyCore

/// `latchkey webserver SERVER`: a ready config for the site, as a snippet or a complete file.
enum WebserverCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["standalone", "listen", "runtime-dir", "cgi-dir", "tls-cert", "tls-key", "fastcgi", "fastcgi-listen"])
        let server = try invocation.word(0, "server name (apache, nginx or lighttpd)")
        let config = try invocation.config()
        let options = invocation.arguments.options
        let layout = WebLayout(config: config, cgiDir: try cgiDir(options["cgi-dir"]))
        let standalone = invocation.arguments.flags.contains("standalone")
        var listen = options["listen"] ?? "127.0.0.1:8080"
        if !listen.contains(":") { listen = "127.0.0.1:" + listen }
        let runtime = Path.absolute(options["runtime-dir"] ?? config.resolve("var/run"))
        var whole = ApacheConfig.Standalone(listen: listen, runtimeDir: runtime, runAsRoot: geteuid() == 0)
        if let certificate = options["tls-cert"], let key = options["tls-key"] {
            guard server == "apache" else { throw CommandError("--tls-cert is for apache; put TLS in front of \(server) as usual") }
            whole.tls = (Path.absolute(certificate), Path.absolute(key))
        } else if options["tls-cert"] != nil || options["tls-key"] != nil {
            throw CommandError("--tls-cert and --tls-key go together")
        }
        let fastcgi = invocation.arguments.flags.contains("fastcgi")
        // The gate hands files back only where the server can take them; with FastCGI the
        // server sends members files itself and the setting does not apply.
        if !fastcgi, server != "nginx", config.membersSendfile == .xAccelRedirect {
            throw CommandError("members_sendfile x-accel-redirect is for nginx; \(server) takes x-sendfile (or off)")
        }
        let runDir = standalone ? runtime : "/run/latchkey"
        func serve(_ fallback: String) -> ServeTarget? {
            fastcgi ? ServeTarget(listen: options["fastcgi-listen"] ?? fallback, config: config, cgiDir: layout.cgiDir) : nil
        }
        switch server {
        case "apache":
            // mod_fcgid starts the workers itself; with --fastcgi-listen, latchkey serve runs them.
            var apache = ApacheConfig(layout: layout)
            if fastcgi { apache.mode = options["fastcgi-listen"] == nil ? .fcgid : serve("").map { .proxy($0) } ?? .fcgid }
            Console.out(apache.render(standalone: standalone ? whole : nil))
        case "nginx":
            Console.out(NginxConfig(layout: layout, serve: serve("unix:\(runDir)/latchkey.sock")).render(standalone: standalone ? whole : nil))
        case "lighttpd":
            Console.out(LighttpdConfig(layout: layout, socketDir: fastcgi ? runDir : nil).render(standalone: standalone ? whole : nil))
        default:
            throw CommandError("unknown web server '\(server)' (known: apache, nginx, lighttpd)")
        }
    }

    /// The CGI folder: `--cgi-dir`, else the `cgi-bin` that `make build` filled next to this tool.
    static func cgiDir(_ explicit: String?) throws -> String {
        if let explicit { return Path.absolute(explicit) }
        // Walk up from the tool: `make build` leaves it under .build/…/release beside cgi-bin/.
        var folder = Path.parent(of: Subprocess.currentExecutable())
        for _ in 0..<5 {
            for candidate in [folder + "/cgi-bin", folder + "/../lib/latchkey/cgi-bin"] {
                let path = Path.normalize(candidate)
                if FileManager.default.fileExists(atPath: path + "/login") { return path }
            }
            folder = Path.parent(of: folder)
        }
        throw CommandError("cannot find the CGI executables; pass --cgi-dir DIR (where `make build` put login, forgot, …)")
    }
}

/// Where `latchkey serve` listens for a `--fastcgi` config, and the command line that starts it
/// (the first line of a standalone config, so whoever runs the server knows to start it first).
struct ServeTarget {
    /// `unix:PATH` or `127.0.0.1:PORT`.
    let listen: String
    let config: SiteConfig
    let cgiDir: String

    /// The exact command: this executable, the socket, the site, the workers' executables, and
    /// when printed by root, the web server's user for the workers.
    var command: String {
        var words = [Subprocess.currentExecutable(), "serve", "--listen", listen, "--config", config.file, "--cgi-dir", cgiDir]
        if geteuid() == 0 { words += ["--user", "www-data"] }
        return words.joined(separator: " ")
    }

    /// `listen` as nginx's `fastcgi_pass` takes it.
    var nginxPass: String { listen }
}

/// What every web-server config needs to know about the site.
struct WebLayout {
    let config: SiteConfig
    let cgiDir: String

    var documentRoot: String { config.resolve(config.output) }
    /// `members_path` without its trailing slash, as a regular expression.
    var membersPattern: String {
        String(config.membersPath.dropLast()).map { ".+*?()[]{}|^$\\".contains($0) ? "\\\($0)" : "\($0)" }.joined()
    }
    var membersDir: String { config.resolve(config.membersDir) }
    func loginPage(message: String? = nil) -> String {
        SitePages.path("login", message: message, locale: config.defaultLocale, config: config)
    }
    /// The account settings page, where `/.well-known/change-password` leads.
    var accountPage: String { config.cgiPrefix + "account" }

    /// The headers every static page gets; the CGIs send their own.
    static let staticHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
    ]
}
