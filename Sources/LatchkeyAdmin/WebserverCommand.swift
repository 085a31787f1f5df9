import FoundationEssentials
import Glibc
import LatchkeyCore

/// `latchkey webserver SERVER`: a ready config for the site, as a snippet or a complete file.
enum WebserverCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["standalone", "listen", "runtime-dir", "cgi-dir"])
        let server = try invocation.word(0, "server name (apache)")
        let config = try invocation.config()
        let options = invocation.arguments.options
        let layout = WebLayout(config: config, cgiDir: try cgiDir(options["cgi-dir"]))
        let standalone = invocation.arguments.flags.contains("standalone")
        var listen = options["listen"] ?? "127.0.0.1:8080"
        if !listen.contains(":") { listen = "127.0.0.1:" + listen }
        let runtime = Path.absolute(options["runtime-dir"] ?? config.resolve("var/run"))
        switch server {
        case "apache":
            Console.out(ApacheConfig(layout: layout).render(standalone: standalone ? .init(listen: listen, runtimeDir: runtime, runAsRoot: geteuid() == 0) : nil))
        default:
            throw CommandError("unknown web server '\(server)' (known: apache)")
        }
    }

    /// The CGI folder: `--cgi-dir`, else the `cgi-bin` that `make build` filled next to this tool.
    static func cgiDir(_ explicit: String?) throws -> String {
        if let explicit { return Path.absolute(explicit) }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let bin = Path.parent(of: exe)
        for candidate in [bin + "/../../cgi-bin", bin + "/cgi-bin", bin + "/../cgi-bin"] {
            let path = Path.normalize(candidate)
            if FileManager.default.fileExists(atPath: path + "/login") { return path }
        }
        throw CommandError("cannot find the CGI executables; pass --cgi-dir DIR (where `make build` put login, forgot, …)")
    }
}

/// What every web-server config needs to know about the site.
struct WebLayout {
    let config: SiteConfig
    let cgiDir: String

    var documentRoot: String { config.resolve(config.output) }
    var accountPage: String { SitePages.path("account", locale: config.defaultLocale, config: config) }

    /// The headers every static page gets; the CGIs send their own.
    static let staticHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
    ]
}
