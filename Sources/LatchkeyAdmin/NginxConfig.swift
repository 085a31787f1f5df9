/// nginx with fcgiwrap (nginx runs no CGI itself): a `server { }` snippet, or with `--standalone`
/// a complete file for `nginx -c`. The members area is guarded with `auth_request` to `session`.
struct NginxConfig {
    let layout: WebLayout

    func render(standalone: ApacheConfig.Standalone?) -> String {
        let config = layout.config
        let socket = (standalone?.runtimeDir ?? "/run/fcgiwrap") + "/fcgiwrap.sock"
        var lines = ["# fcgiwrap socket: \(socket)"]
        var indent = ""
        if let s = standalone {
            lines += [
                "# Complete nginx config for \(config.siteName), made by `latchkey webserver nginx --standalone`.",
                "# Start fcgiwrap first, as the web server's user:  fcgiwrap -s unix:\(socket)",
                "# Run: nginx -c THIS_FILE    Stop: nginx -c THIS_FILE -s stop",
                "daemon on;",
                "worker_processes 2;",
                "pid \(s.runtimeDir)/nginx.pid;",
                "error_log \(s.runtimeDir)/error.log warn;",
            ]
            if s.runAsRoot { lines.append("user www-data;") }
            lines += [
                "events { worker_connections 512; }",
                "http {",
                "    include /etc/nginx/mime.types;",
                "    default_type application/octet-stream;",
                "    charset utf-8;",
                "    access_log \(s.runtimeDir)/access.log;",
            ]
            lines += ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map { "    \($0)_temp_path \(s.runtimeDir)/\($0)_temp;" }
            lines += ["    server {", "        listen \(s.listen);", "        server_name \(s.listen.split(separator: ":").first ?? "127.0.0.1");"]
            indent = "        "
        } else {
            lines += [
                "# nginx snippet for \(config.siteName), made by `latchkey webserver nginx`: put it inside the",
                "# server { } that serves \(config.baseURL). Run fcgiwrap (Debian: apt install fcgiwrap) on the socket above.",
            ]
        }
        let cgi = config.cgiPrefix
        let headers = WebLayout.staticHeaders.map { "add_header \($0.0) \"\($0.1)\" always;" }
        var body = [
            "# The generated pages. The database, key and site source live outside this folder.",
            "root \(layout.documentRoot);",
            "index login.html;",
            "error_page 404 \(config.rootPath)error-404.html;",
            "location \(config.rootPath) {",
        ]
        body += headers.map { "    " + $0 }
        body += [
            "    try_files $uri $uri/ =404;",
            "}",
            "# Password managers look here for the change-password page.",
            "location = \(config.rootPath).well-known/change-password { return 303 \(layout.accountPage); }",
        ]
        if config.brand.faviconIsSVG {
            body += ["# favicon.ico holds the site's SVG icon, and browsers decode an icon by its type.",
                     "location = \(config.rootPath)favicon.ico {", "    types { }", "    default_type image/svg+xml;"]
            body += headers.map { "    " + $0 } + ["}"]
        }
        body += [
            "",
            "# The CGI endpoints, through fcgiwrap. LATCHKEY_CONFIG tells them where the site is.",
            "location ~ ^\(cgi)(login|logout|forgot|reset|account|session|stripe|confirm-email)$ {",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/$1;",
            "    fastcgi_param SCRIPT_NAME \(cgi)$1;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass unix:\(socket);",
            "}",
            "# The staff console and the JSON API: one CGI each, the page or resource in PATH_INFO.",
            "location ~ ^\(cgi)(admin|api)(/.*)?$ {",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/$1;",
            "    fastcgi_param SCRIPT_NAME \(cgi)$1;",
            "    fastcgi_param PATH_INFO $2;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass unix:\(socket);",
            "}",
            "",
            "# The members area: nginx asks the session endpoint on every request (204 lets it through).",
            "location \(config.membersPath) {",
            "    auth_request \(cgi)_session_check;",
            "    error_page 401 = @latchkey_login;",
            "    alias \(layout.membersDir)/;",
            "    index index.html;",
            "    # Course media nginx's own list lacks: captions, HLS and DASH.",
            "    include /etc/nginx/mime.types;",
            "    types { text/vtt vtt; application/vnd.apple.mpegurl m3u8; video/mp2t ts; application/dash+xml mpd; video/iso.segment m4s; }",
            "    add_header Cache-Control \"private, no-store\" always;",
            "}",
            "location = \(cgi)_session_check {",
            "    internal;",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_pass_request_body off;",
            "    fastcgi_param CONTENT_LENGTH \"\";",
            "    fastcgi_param REQUEST_METHOD GET;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/session;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass unix:\(socket);",
            "}",
            "location @latchkey_login {",
            "    add_header Set-Cookie \"lk_next=$request_uri; Path=\(cgi)login; Max-Age=900; HttpOnly; SameSite=Lax\" always;",
            "    return 303 \(layout.loginPage(message: "session_expired"))?next=$request_uri;",
            "}",
        ]
        lines += body.map { $0.isEmpty ? "" : indent + $0 }
        if standalone != nil { lines += ["    }", "}"] }
        return lines.joined(separator: "\n")
    }
}

/// lighttpd runs the CGIs itself (mod_cgi): a snippet for lighttpd.conf, or a complete file
/// for `lighttpd -f`.
struct LighttpdConfig {
    let layout: WebLayout

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
                "server.modules = (\"mod_access\", \"mod_alias\", \"mod_redirect\", \"mod_setenv\", \"mod_indexfile\", \"mod_cgi\", \"mod_staticfile\", \"mod_accesslog\")",
                "accesslog.filename = \"\(s.runtimeDir)/access.log\"",
                "include_shell \"/usr/share/lighttpd/create-mime.conf.pl\"",
            ]
            if s.runAsRoot { lines += ["server.username = \"www-data\"", "server.groupname = \"www-data\""] }
        } else {
            lines += [
                "# lighttpd snippet for \(config.siteName), made by `latchkey webserver lighttpd`.",
                "# Needs mod_alias, mod_redirect, mod_setenv and mod_cgi in server.modules.",
            ]
        }
        let headers = WebLayout.staticHeaders.map { "\"\($0.0)\" => \"\($0.1)\"" }.joined(separator: ", ")
        lines += [
            "# The generated pages. The database, key and site source live outside this folder.",
            "server.document-root = \"\(layout.documentRoot)\"",
            "index-file.names = (\"login.html\")",
            "server.error-handler = \"\(config.rootPath)error-404.html\"",
            "url.redirect = (\"^\(config.rootPath)\\.well-known/change-password$\" => \"\(layout.accountPage)\")",
            "url.redirect-code = 303",
            "",
            "# The CGI endpoints and the members gate (which serves members_dir, outside the document root).",
            "alias.url += (\"\(config.cgiPrefix)\" => \"\(layout.cgiDir)/\", \"\(String(config.membersPath.dropLast()))\" => \"\(layout.cgiDir)/members\")",
            "$HTTP[\"url\"] =~ \"^(\(config.cgiPrefix)|\(config.membersPath))\" {",
            "    cgi.assign = (\"\" => \"\")",
            "    setenv.add-environment = (\"LATCHKEY_CONFIG\" => \"\(config.file)\")",
            "} else {",
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
}
