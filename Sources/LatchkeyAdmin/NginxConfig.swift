import LatchkeyCore

/// nginx with fcgiwrap (nginx runs no CGI itself), or with `--fastcgi` with `latchkey serve`'s
/// workers: a `server { }` snippet, or with `--standalone` a complete file for `nginx -c`. The
/// members area is served by nginx itself, guarded with `auth_request` to `session`.
struct NginxConfig {
    let layout: WebLayout
    /// The workers to pass requests to (`--fastcgi`); nil for fcgiwrap.
    var serve: ServeTarget?

    func render(standalone: ApacheConfig.Standalone?) -> String {
        let config = layout.config
        let socket = (standalone?.runtimeDir ?? "/run/fcgiwrap") + "/fcgiwrap.sock"
        let pass = serve?.nginxPass ?? "unix:\(socket)"
        var lines = [serve.map { "# start first: \($0.command)" } ?? "# fcgiwrap socket: \(socket)"]
        var indent = ""
        if let s = standalone {
            lines += [
                "# Complete nginx config for \(config.siteName), made by `latchkey webserver nginx --standalone`.",
                serve == nil ? "# Start fcgiwrap first, as the web server's user:  fcgiwrap -s unix:\(socket)"
                    : "# Start the workers first, with the command on the first line (or the units of `latchkey webserver systemd`).",
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
                serve == nil ? "# server { } that serves \(config.baseURL). Run fcgiwrap (Debian: apt install fcgiwrap) on the socket above."
                    : "# server { } that serves \(config.baseURL). Run the workers with the command above.",
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
            serve == nil ? "# The CGI endpoints, through fcgiwrap. LATCHKEY_CONFIG tells them where the site is."
                : "# The endpoints, answered by latchkey serve's workers by SCRIPT_NAME. LATCHKEY_CONFIG names the site.",
            "location ~ ^\(cgi)(login|logout|forgot|reset|account|session|stripe|confirm-email)$ {",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/$1;",
            "    fastcgi_param SCRIPT_NAME \(cgi)$1;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass \(pass);",
            "}",
            "# The staff console and the JSON API: one CGI each, the page or resource in PATH_INFO.",
            "location ~ ^\(cgi)(admin|api)(/.*)?$ {",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/$1;",
            "    fastcgi_param SCRIPT_NAME \(cgi)$1;",
            "    fastcgi_param PATH_INFO $2;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass \(pass);",
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
            "    add_header X-Content-Type-Options nosniff always;",
            "}",
            "location = \(String(config.membersPath.dropLast())) { return 303 \(config.membersPath); }",
            "location = \(cgi)_session_check {",
            "    internal;",
            "    include /etc/nginx/fastcgi_params;",
            "    fastcgi_pass_request_body off;",
            "    # The check reads only the cookie: the browser's other headers (a video's Range, ...) stay behind.",
            "    fastcgi_pass_request_headers off;",
            "    fastcgi_param HTTP_COOKIE $http_cookie;",
            "    fastcgi_param CONTENT_LENGTH \"\";",
            "    fastcgi_param REQUEST_METHOD GET;",
            "    fastcgi_param SCRIPT_FILENAME \(layout.cgiDir)/session;",
            "    fastcgi_param SCRIPT_NAME \(cgi)session;",
            "    fastcgi_param LATCHKEY_CONFIG \(config.file);",
            "    fastcgi_param HTTP_PROXY \"\";",
            "    fastcgi_pass \(pass);",
            "}",
            "# Where the members gate's X-Accel-Redirect points (members_sendfile: x-accel-redirect).",
            "location \(SiteConfig.membersInternalPath) {",
            "    internal;",
            "    alias \(layout.membersDir)/;",
            "    add_header Cache-Control \"private, no-store\" always;",
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
