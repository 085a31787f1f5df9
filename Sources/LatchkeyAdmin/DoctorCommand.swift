import FoundationEssentials
import Glibc
import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// `latchkey doctor [--user www-data] [--cgi-dir DIR] [--url URL]`: checks a deployment and
/// says, for each problem, what is wrong and the command that fixes it.
enum DoctorCommand {
    struct Finding { let problem: String; let fix: String }

    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["user", "cgi-dir", "url"])
        var findings: [Finding] = []
        var passed: [String] = []
        func check(_ ok: Bool, _ what: String, _ problem: @autoclosure () -> String, fix: @autoclosure () -> String) {
            if ok { passed.append(what) } else { findings.append(Finding(problem: problem(), fix: fix())) }
        }
        let config: SiteConfig
        do { config = try invocation.config() } catch {
            Console.out("problem: the config does not load: \(error)\n  fix: edit \(invocation.configPath)")
            throw CommandError("1 problem found")
        }
        passed.append("config \(config.file) is valid")
        let user = invocation.arguments.options["user"] ?? "www-data"
        guard let (uid, gid) = account(user) else { throw CommandError("no user '\(user)' in /etc/passwd (pass --user NAME)") }
        let output = config.resolve(config.output), key = config.resolve(config.keyFile), database = config.resolve(config.database)

        var info = stat()
        let keyExists = stat(key, &info) == 0
        check(keyExists, "key file exists", "the site key \(key) is missing", fix: "latchkey init (for a new site), or restore the key from your backup")
        if keyExists {
            check(info.st_mode & 0o077 == 0, "key file is mode 0600", "the site key \(key) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8)))", fix: "chmod 600 \(key)")
            check(info.st_uid == uid, "key file belongs to \(user)", "the CGIs run as \(user) but cannot read \(key)", fix: "chown \(user): \(key)")
        }
        let dbFolder = Path.parent(of: database)
        check(writable(dbFolder, uid: uid, gid: gid), "database folder writable by \(user)",
              "\(dbFolder) is not writable by \(user) (SQLite writes -wal and -shm files beside the database)", fix: "chown -R \(user): \(dbFolder)")
        if FileManager.default.fileExists(atPath: database) {
            let current = (try? Database.open(path: database).isCurrent()) ?? false
            check(current, "database schema is current", "the database schema is not up to date", fix: "latchkey offer list   (any admin command run as root migrates it; then chown -R \(user): \(dbFolder))")
        } else {
            findings.append(Finding(problem: "the database \(database) is missing", fix: "latchkey init, or restore it from your backup"))
        }
        for (name, path) in [("database", database), ("key", key), ("site config", config.file), ("site source", config.folder + "/templates")] {
            check(!Path.isInside(path, output), "\(name) outside the document root", "the \(name) \(path) is inside the document root \(output) and can be downloaded",
                  fix: "move it out of \(output) and update latchkey.json")
        }
        check(FileManager.default.fileExists(atPath: output + "/login.html"), "pages are built", "no pages in \(output)", fix: "latchkey build")

        let cgiDir = (try? WebserverCommand.cgiDir(invocation.arguments.options["cgi-dir"])) ?? ""
        for name in ["login", "logout", "forgot", "reset", "account", "session", "members", "admin", "api", "stripe", "confirm-email"] {
            let path = cgiDir + "/" + name
            check(!cgiDir.isEmpty && access(path, X_OK) == 0, "CGI \(name) is executable", "the CGI executable \(path.isEmpty ? name : path) is missing or not executable",
                  fix: cgiDir.isEmpty ? "make build, then pass --cgi-dir DIR" : "make build (it installs the CGIs into \(cgiDir))")
        }

        switch Transport(config: config) {
        case let .maildir(folder):
            let existing = FileManager.default.fileExists(atPath: folder) ? folder : Path.parent(of: folder)
            check(writable(existing, uid: uid, gid: gid), "Maildir writable by \(user)", "the Maildir \(folder) is not writable by \(user)", fix: "mkdir -p \(folder) && chown -R \(user): \(folder)")
        case let .sendmail(program):
            check(access(program, X_OK) == 0, "sendmail program is executable", "the mail program \(program) does not exist or is not executable",
                  fix: "apt-get install msmtp-mta (or postfix), or set mail.transport in latchkey.json")
        }

        if let url = invocation.arguments.options["url"] {
            for (path, expected, what) in [("login.html", 200, "login page"), ("\(String(config.cgiPrefix.dropFirst()))session", 401, "session endpoint"),
                                           ("\(String(config.cgiPrefix.dropFirst()))forgot", 405, "forgot endpoint (GET is refused)")] {
                let full = url.hasSuffix("/") ? url + path : url + "/" + path
                let status = HTTPProbe.status(of: full)
                check(status == expected, "\(what) answers \(expected)", "\(full) answered \(status.map(String.init) ?? "nothing") instead of \(expected)",
                      fix: "latchkey webserver apache|nginx|lighttpd prints a working config; check the server's error log")
            }
        }

        for line in passed { Console.out("ok       \(line)") }
        for finding in findings { Console.out("problem  \(finding.problem)\n  fix:   \(finding.fix)") }
        if findings.isEmpty { Console.out("All \(passed.count) checks passed.") } else {
            throw CommandError("\(findings.count) problem\(findings.count == 1 ? "" : "s") found")
        }
    }

    /// The uid and gid of `name`, read from /etc/passwd directly: a static binary must not
    /// call into NSS (`getpwnam`), whose modules belong to the system's glibc.
    static func account(_ name: String) -> (uid_t, gid_t)? {
        guard let data = FileManager.default.contents(atPath: "/etc/passwd") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 4, fields[0] == name, let uid = uid_t(fields[2]), let gid = gid_t(fields[3]) { return (uid, gid) }
        }
        return nil
    }

    /// True when `uid`/`gid` may create files in `folder`.
    static func writable(_ folder: String, uid: uid_t, gid: gid_t) -> Bool {
        var info = stat()
        guard stat(folder, &info) == 0 else { return false }
        if info.st_uid == uid { return info.st_mode & 0o300 == 0o300 }
        if info.st_gid == gid { return info.st_mode & 0o030 == 0o030 }
        return info.st_mode & 0o003 == 0o003
    }
}

/// The status line of one plain-HTTP GET, for `doctor --url`.
enum HTTPProbe {
    static func status(of url: String) -> Int? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let hostPort = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(hostPort.count)
        let parts = hostPort.split(separator: ":")
        var host = String(parts.first ?? "127.0.0.1")
        let port = parts.count > 1 ? String(parts[1]) : "80"
        if host == "localhost" { host = "127.0.0.1" }
        // Numeric addresses only: name lookups go through NSS, which a static binary avoids.
        var hints = addrinfo(ai_flags: AI_NUMERICHOST | AI_NUMERICSERV, ai_family: AF_INET, ai_socktype: Int32(SOCK_STREAM.rawValue), ai_protocol: 0,
                             ai_addrlen: 0, ai_addr: nil, ai_canonname: nil, ai_next: nil)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &result) == 0, let address = result else { return nil }
        defer { freeaddrinfo(result) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else { return nil }
        let request = Array("GET \(path.isEmpty ? "/" : String(path)) HTTP/1.0\r\nHost: \(hostPort)\r\nUser-Agent: latchkey-doctor\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        guard n > 12 else { return nil }
        return Int(String(decoding: buffer[9..<12], as: UTF8.self))
    }
}
