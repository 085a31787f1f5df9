/// lighttpd runs the CGIs itself (mod_cgi), or with `--fastcgi` starts the workers itself
/// (mod_fastcgi `bin-path`) and serves the members area after asking `session` as an
/// authorizer: a snippet for lighttpd.conf, or a complete file for `lighttpd -f`.
struct LighttpdConfig {
    let layout: WebLayout
    /// Where lighttpd puts the workers' sockets (`--fastcgi`); nil for mod_cgi.
    var socketDir: String?

    func render(standalone: ApacheConfig.Standalone?) -> String {
        let config = layout.config
        var lines: [String] = []
        if let s = standalone {
            let host = s.listen.split(separator: ":").first.map(String.init) ?? "127.0.0.1"
            let port = s.listen.split(separator: ":").last.map(String.init) ?? "8080"
            lines += [
                "# Complete lighttpd config for \(config.siteName), made by `latchkey webserver lighttpd --standalone`.",
                "# Run: lighttpd -f THIS_FILE    Stop: kill $(cat \(s.runtimeDir)/lighttpd.pid)",
                "# lighttpd opens its logs after dropping to www-data: the runtime folder must be writable by it.",
                "server.bind = \"\(host)\"",
                "server.port = \(port)",
                "server.pid-file = \"\(s.runtimeDir)/lighttpd.pid\"",
                "server.errorlog = \"\(s.runtimeDir)/error.log\"",
                "server.modules = (\"mod_access\", \"mod_alias\", \"mod_redirect\", \"mod_setenv\", \"mod_indexfile\", \"\(socketDir == nil ? "mod_cgi" : "mod_fastcgi")\", \"mod_staticfile\", \"mod_accesslog\")",
                "accesslog.filename = \"\(s.runtimeDir)/access.log\"",
                "include_shell \"/usr/share/lighttpd/create-mime.conf.pl\"",
            ]
            if s.runAsRoot { lines += ["server.username = \"www-data\"", "server.groupname = \"www-data\""] }
        } else {
            lines += [
                "# lighttpd snippet for \(config.siteName), made by `latchkey webserver lighttpd`.",
                "# Needs mod_alias, mod_redirect, mod_setenv and \(socketDir == nil ? "mod_cgi" : "mod_fastcgi") in server.modules.",
            ]
        }
        let headers = WebLayout.staticHeaders.map { "\"\($0.0)\" => \"\($0.1)\"" }.joined(separator: ", ")
        lines += [
            "# The generated pages. The database, key and site source live outside this folder.",
            "server.document-root = \"\(layout.documentRoot)\"",
            "index-file.names = (\"login.html\")",
            "server.error-handler = \"\(config.rootPath)error-404.html\"",
            "url.redirect = (\"^\(config.rootPath)\\.well-known/change-password$\" => \"\(layout.accountPage)\"\(socketDir == nil ? "" : ", \"^\(layout.membersPattern)$\" => \"\(config.membersPath)\""))",
            "url.redirect-code = 303",
            "",
        ]
        lines += socketDir.map(fastcgi) ?? cgi
        lines += [
            "$HTTP[\"url\"] !~ \"^(\(config.cgiPrefix)|\(layout.membersPattern)(/|$))\" {",
            "    setenv.add-response-header = (\(headers))",
            "}",
        ]
        if config.brand.faviconIsSVG {
            lines += ["# favicon.ico holds the site's SVG icon, and browsers decode an icon by its type.",
                      "$HTTP[\"url\"] == \"\(config.rootPath)favicon.ico\" {",
                      "    mimetype.assign = (\"\" => \"image/svg+xml\")", "}"]
        }
        return lines.joined(separator: "\n")
    }

    /// mod_cgi: the endpoints, and the members gate serving `members_dir`.
    private var cgi: [String] {
        let config = layout.config
        var lines = [
            "# The CGI endpoints and the members gate (which serves members_dir, outside the document root).",
            "alias.url += (\"\(config.cgiPrefix)\" => \"\(layout.cgiDir)/\", \"\(String(config.membersPath.dropLast()))\" => \"\(layout.cgiDir)/members\")",
            // `members_path` without its slash too: the alias maps it to the gate itself, which must
            // run, never be sent as a file.
            "$HTTP[\"url\"] =~ \"^(\(config.cgiPrefix)|\(layout.membersPattern)(/|$))\" {",
            "    cgi.assign = (\"\" => \"\")",
            "    setenv.add-environment = (\"LATCHKEY_CONFIG\" => \"\(config.file)\")",
        ]
        if config.membersSendfile == .xSendfile {
            lines += ["    # members_sendfile: the gate names the file, lighttpd sends it (ranges and validators its own).",
                      "    cgi.x-sendfile = \"enable\"", "    cgi.x-sendfile-docroot = (\"\(layout.membersDir)/\")"]
        }
        return lines + ["}"]
    }

    /// mod_fastcgi: lighttpd starts the workers (`bin-path`) on sockets in `dir`; one pool answers
    /// the endpoints, another is the members area's authorizer, after which lighttpd sends the file.
    private func fastcgi(_ dir: String) -> [String] {
        let config = layout.config
        func pool(_ name: String, _ extra: [String]) -> [String] {
            ["    \"\(name == "authorizer" ? config.membersPath : config.cgiPrefix)\" => ((",
             "        \"socket\" => \"\(dir)/latchkey-\(name).sock\",",
             "        \"bin-path\" => \"\(layout.cgiDir)/session\",",
             "        \"bin-environment\" => (\"LATCHKEY_CONFIG\" => \"\(config.file)\"),",
             "        \"check-local\" => \"disable\","] + extra.map { "        " + $0 } + ["    )),"]
        }
        return [
            "# The endpoints and the members authorizer: workers lighttpd starts and keeps (FastCGI).",
            "alias.url += (\"\(config.membersPath)\" => \"\(layout.membersDir)/\")",
            "fastcgi.server = (",
        ] + pool("endpoints", ["\"max-procs\" => 2,"]) + pool("authorizer", ["\"mode\" => \"authorizer\",", "\"max-procs\" => 1,"]) + [
            ")",
            "$HTTP[\"url\"] =~ \"^\(config.membersPath)\" {",
            "    index-file.names = (\"index.html\")",
            "    setenv.add-response-header = (\"Cache-Control\" => \"private, no-store\", \"X-Content-Type-Options\" => \"nosniff\")",
            "}",
        ]
    }
}
