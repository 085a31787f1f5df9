/// Apache 2.4 with mod_cgid; or with `--fastcgi`, workers Apache starts itself (mod_fcgid), or
/// with `--fastcgi-listen` mod_proxy_fcgi to `latchkey serve`'s. In both FastCGI modes Apache
/// sends members files itself once `session` has said yes. A snippet for an existing virtual
/// host, or a complete file for `apache2 -f`.
struct ApacheConfig {
    /// How the endpoints run.
    enum Mode {
        /// A process per request (mod_cgid).
        case cgi
        /// Workers Apache starts and keeps (mod_fcgid); the members area behind its access checker.
        case fcgid
        /// `latchkey serve`'s workers (mod_proxy_fcgi); the members area behind mod_authnz_fcgi.
        case proxy(ServeTarget)
    }

    /// What a complete, self-contained config adds around the snippet.
    struct Standalone {
        let listen: String
        let runtimeDir: String
        /// Apache started as root drops to www-data; Debian's Apache refuses to run CGIs as root.
        let runAsRoot: Bool
        /// Certificate and key files: serve HTTPS on `listen` instead of HTTP.
        var tls: (certificate: String, key: String)?
    }

    let layout: WebLayout
    var mode = Mode.cgi

    // mod_log_config is compiled into Debian's apache2 and must not be loaded again.
    static let modules = ["mpm_event", "authz_core", "mime", "alias", "cgid", "env", "headers", "dir"]
    static let proxyModules = ["mpm_event", "authz_core", "mime", "alias", "env", "headers", "dir", "authn_core",
                               "authz_user", "proxy", "proxy_fcgi", "authnz_fcgi"]
    static let fcgidModules = ["mpm_event", "authz_core", "mime", "alias", "env", "headers", "dir", "fcgid"]

    func render(standalone: Standalone?) -> String {
        let config = layout.config
        var lines: [String] = []
        if case .proxy(let serve) = mode { lines.append("# start first: \(serve.command)") }
        if let s = standalone {
            lines += [
                "# Complete Apache config for \(config.siteName), made by `latchkey webserver apache --standalone`.",
                "# Run: apache2 -f THIS_FILE -k start    Stop: apache2 -f THIS_FILE -k stop",
                "ServerRoot \"/etc/apache2\"",
                "ServerName \(s.listen.split(separator: ":").first ?? "127.0.0.1")",
                "Listen \(s.listen)",
                "PidFile \"\(s.runtimeDir)/apache2.pid\"",
                "DefaultRuntimeDir \"\(s.runtimeDir)\"",
                "Mutex file:\(s.runtimeDir) default",
                "ErrorLog \"\(s.runtimeDir)/error.log\"",
                "LogLevel warn",
            ]
            let modules = switch mode {
            case .cgi: ApacheConfig.modules + (layout.config.membersSendfile == .xSendfile ? ["xsendfile"] : [])
            case .fcgid: ApacheConfig.fcgidModules
            case .proxy: ApacheConfig.proxyModules
            }
            lines += modules.map { "LoadModule \($0)_module /usr/lib/apache2/modules/mod_\($0).so" }
            lines += [
                "TypesConfig /etc/mime.types",
                "AddDefaultCharset utf-8",
                "LogFormat \"%h %t \\\"%r\\\" %>s %b %D\" latchkey",
                "CustomLog \"\(s.runtimeDir)/access.log\" latchkey",
            ]
            switch mode {
            case .cgi:
                lines += ["# mod_cgid's socket must be an absolute path, or requests hang then fail with 503.",
                          "ScriptSock \"\(s.runtimeDir)/cgid.sock\""]
            case .fcgid:
                lines += ["FcgidIPCDir \"\(s.runtimeDir)/fcgid\"", "FcgidProcessTableFile \"\(s.runtimeDir)/fcgid_shm\""]
            case .proxy:
                break
            }
            lines += [
                "StartServers 1",
                "ThreadsPerChild 25",
                "MinSpareThreads 25",
                "MaxSpareThreads 75",
                "MaxRequestWorkers 150",
                "Timeout 30",
            ]
            if s.runAsRoot { lines += ["User www-data", "Group www-data"] }
            if let tls = s.tls {
                lines += [
                    "# HTTPS: the CGIs see HTTPS=on and mark cookies Secure (session cookie with the __Host- prefix).",
                    "LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so",
                    "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so",
                    "SSLSessionCache \"shmcb:\(s.runtimeDir)/ssl_scache(512000)\"",
                    "SSLEngine on",
                    "SSLCertificateFile \"\(tls.certificate)\"",
                    "SSLCertificateKeyFile \"\(tls.key)\"",
                    "SSLProtocol -all +TLSv1.2 +TLSv1.3",
                ]
            }
            lines += ["<Directory />", "    AllowOverride None", "    Require all denied", "</Directory>", ""]
        } else {
            lines += [
                "# Apache snippet for \(config.siteName), made by `latchkey webserver apache`.",
                "# Put it inside the <VirtualHost> that serves \(config.baseURL); needs mod_cgid (or mod_cgi),",
                "# mod_alias, mod_env, mod_headers and mod_dir: a2enmod cgid alias env headers dir",
            ]
        }
        lines += [
            "# The generated pages. The database, key and site source live outside this folder.",
            "DocumentRoot \"\(layout.documentRoot)\"",
            "DirectoryIndex login.html",
            "<Directory \"\(layout.documentRoot)\">",
            "    Options -Indexes -FollowSymLinks",
            "    AllowOverride None",
            "    Require all granted",
        ]
        lines += WebLayout.staticHeaders.map { "    Header always set \($0.0) \"\($0.1)\"" }
        lines += [
            "</Directory>",
            "# Password managers look here for the change-password page.",
            "Redirect 303 \(config.rootPath).well-known/change-password \(layout.accountPage)",
            "ErrorDocument 404 \(config.rootPath)error-404.html",
            "# TRACE echoes a request back (cookies and keys included); nothing here needs it.",
            "TraceEnable Off",
        ]
        if config.brand.faviconIsSVG {
            lines += [
                "# favicon.ico holds the site's SVG icon, and browsers decode an icon by its type.",
                "<Location \"\(config.rootPath)favicon.ico\">",
                "    ForceType image/svg+xml",
                "</Location>",
            ]
        }
        switch mode {
        case .cgi: lines += cgi
        case .fcgid: lines += fcgid
        case .proxy(let serve): lines += proxy(serve)
        }
        return lines.joined(separator: "\n")
    }

    /// mod_cgid: the members gate and the CGI endpoints.
    private var cgi: [String] {
        let config = layout.config
        return [
            "",
            "# The members area: the gate CGI serves members_dir (outside the document root) to logged-in",
            "# customers with active access and sends everyone else to the login page.",
            "ScriptAliasMatch \"^\(layout.membersPattern)(/.*)?$\" \"\(layout.cgiDir)/members$1\"",
        ] + (config.membersSendfile == .xSendfile ? [
            "# members_sendfile: the gate names the file and Apache sends it (mod_xsendfile: a2enmod xsendfile).",
            "<Location \"\(String(config.membersPath.dropLast()))\">",
            "    XSendFile On",
            "    XSendFilePath \"\(layout.membersDir)\"",
            "</Location>",
        ] : []) + [
            "",
            "# The CGI endpoints: login, logout, forgot, reset, account, session, admin, api, stripe.",
            "ScriptAlias \(config.cgiPrefix) \"\(layout.cgiDir)/\"",
            "<Directory \"\(layout.cgiDir)\">",
            "    Options +ExecCGI -Indexes",
            "    AllowOverride None",
            "    Require all granted",
            "    # The CGIs find the site through this; nothing else in their environment is trusted.",
            "    SetEnv LATCHKEY_CONFIG \"\(config.file)\"",
            "    # Never let a client's Proxy: header become HTTP_PROXY in the CGI environment (httpoxy).",
            "    RequestHeader unset Proxy early",
            "    # The API's bearer key: Apache withholds Authorization from CGIs unless told to pass it.",
            "    CGIPassAuth On",
            "</Directory>",
        ]
    }

    /// mod_fcgid: the endpoints as workers Apache starts; the members area sent by Apache after
    /// the access checker (`session`) said yes. mod_fcgid answers any refusal 401, and that
    /// error document is `session` again, which gives the visitor the redirect to log in.
    private var fcgid: [String] {
        let config = layout.config
        return [
            "",
            "# The endpoints: workers Apache starts and keeps (mod_fcgid), by URL.",
            "FcgidInitialEnv LATCHKEY_CONFIG \"\(config.file)\"",
            "# Each worker replaces itself (fastcgi.max_requests, max_memory); mod_fcgid need not count.",
            "FcgidMaxRequestsPerProcess 0",
            "Alias \(config.cgiPrefix) \"\(layout.cgiDir)/\"",
            "<Directory \"\(layout.cgiDir)\">",
            "    SetHandler fcgid-script",
            "    Options +ExecCGI -Indexes",
            "    AllowOverride None",
            "    Require all granted",
            "    # Never let a client's Proxy: header become HTTP_PROXY (httpoxy).",
            "    RequestHeader unset Proxy early",
            "    # The API's bearer key: Apache withholds Authorization unless told to pass it.",
            "    CGIPassAuth On",
            "</Directory>",
        ] + members(["FcgidAccessChecker \"\(layout.cgiDir)/session\"", "ErrorDocument 401 \(config.cgiPrefix)session",
                     "Require all granted"])
    }

    /// mod_proxy_fcgi to the workers for every endpoint; the members area served by Apache after
    /// mod_authnz_fcgi has asked `session` (its 200 names the person, any other answer is the
    /// visitor's: the redirect to log in).
    private func proxy(_ serve: ServeTarget) -> [String] {
        let config = layout.config
        let names = "login|logout|forgot|reset|account|session|stripe|confirm-email|admin|api"
        return [
            "",
            "# The endpoints, answered by latchkey serve's workers (start them first: the first line).",
            "ProxyPassMatch \"^(\(config.cgiPrefix)(\(names))(/.*)?)$\" \"fcgi://\(serve.listen)$1\"",
            "<Location \"\(config.cgiPrefix)\">",
            "    # The workers find the site through this.",
            "    SetEnv LATCHKEY_CONFIG \"\(config.file)\"",
            "    # Never let a client's Proxy: header become HTTP_PROXY (httpoxy).",
            "    RequestHeader unset Proxy early",
            "    # The API's bearer key: Apache withholds Authorization unless told to pass it.",
            "    CGIPassAuth On",
            "</Location>",
            "AuthnzFcgiDefineProvider authn latchkey-session fcgi://\(serve.listen)/",
        ] + members(["AuthType latchkey", "AuthName \"members\"",
                     "AuthnzFcgiCheckAuthnProvider latchkey-session Authoritative On RequireBasicAuth Off UserExpr \"%{reqenv:LATCHKEY_PERSON}\"",
                     "Require valid-user"])
    }

    /// The members area sent by Apache itself (ranges, validators, sendfile) behind `check`.
    private func members(_ check: [String]) -> [String] {
        let config = layout.config
        return [
            "",
            "# The members area: Apache sends the files once the session check has said yes; anyone",
            "# else gets the check's own answer, the redirect to log in.",
            "RedirectMatch 303 \"^\(layout.membersPattern)$\" \"\(config.membersPath)\"",
            "Alias \"\(config.membersPath)\" \"\(layout.membersDir)/\"",
            "<Directory \"\(layout.membersDir)\">",
            "    Options -Indexes -FollowSymLinks",
            "    AllowOverride None",
            "    DirectoryIndex index.html",
        ] + check.map { "    " + $0 } + [
            "    Header always set Cache-Control \"private, no-store\"",
            "    Header always set X-Content-Type-Options nosniff",
            "    AddType text/vtt .vtt",
            "    AddType application/vnd.apple.mpegurl .m3u8",
            "    AddType application/dash+xml .mpd",
            "    AddType video/iso.segment .m4s",
            "</Directory>",
        ]
    }
}
