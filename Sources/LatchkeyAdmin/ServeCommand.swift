import CLinux
import Glibc
import LatchkeyCore

/// `latchkey serve`: the FastCGI socket for nginx `fastcgi_pass` and Apache `mod_proxy_fcgi`,
/// with a pool of workers accepting on it (`Supervisor`). The socket is bound here, before
/// privileges are dropped, so a root start can hand it to the web server's user.
enum ServeCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["listen", "workers", "cgi-dir", "user"])
        let options = invocation.arguments.options
        let config = try invocation.config()
        var workers = config.fastcgi.workers
        if let text = options["workers"] {
            guard let n = Int(text), (1...256).contains(n) else { throw CommandError("--workers must be a number from 1 to 256") }
            workers = n
        }
        let program = try WebserverCommand.cgiDir(options["cgi-dir"]) + "/session"
        guard access(program, X_OK) == 0 else { throw CommandError("cannot run \(program): build the CGIs first (make build)") }
        let account = try options["user"].map { name in
            guard let ids = DoctorCommand.account(name) else { throw CommandError("no user named \(name) in /etc/passwd") }
            return ids
        }
        if geteuid() == 0 && account == nil {
            throw CommandError("refusing to run workers as root: pass --user (the web server's user, e.g. www-data)")
        }
        let (socket, address, unixPath) = try listeningSocket(options["listen"], environment: invocation.environment)
        if let (uid, gid) = account, geteuid() == 0 {
            if let unixPath { _ = chown(unixPath, uid, gid) }
            guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
                throw CommandError("cannot become \(options["user"] ?? "") (\(String(cString: strerror(errno))))")
            }
        }
        let supervisor = Supervisor(socket: socket, program: program, configPath: config.file, workers: workers)
        Console.err("latchkey serve: \(address), \(workers) worker\(workers == 1 ? "" : "s") of \(program)")
        let status = supervisor.run()
        // Dropped to --user, the supervisor may not remove a socket in a folder that is not that
        // user's: the next start replaces it (systemd's socket unit has none of this).
        if let unixPath, unlink(unixPath) != 0 {
            Console.err("latchkey serve: left \(unixPath) (\(String(cString: strerror(errno)))); the next start replaces it")
        }
        if status != 0 { throw CommandError("workers could not be kept running") }
    }

    /// The socket to accept on: systemd's (`LISTEN_FDS`, descriptor 3), else `--listen`
    /// `unix:PATH` (mode 0660, replacing a stale socket, never another file) or `127.0.0.1:PORT`.
    static func listeningSocket(_ listen: String?, environment: [String: String]) throws -> (Int32, String, String?) {
        if environment["LISTEN_FDS"] == "1", environment["LISTEN_PID"] == String(getpid()) {
            return (3, "the socket systemd passed", nil)
        }
        guard let listen else { throw CommandError("--listen unix:PATH or --listen 127.0.0.1:PORT is required") }
        if listen.hasPrefix("unix:") {
            let path = Path.absolute(String(listen.dropFirst(5)))
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard path.utf8.count < capacity else { throw CommandError("socket path longer than \(capacity - 1) bytes: \(path)") }
            var info = stat()
            if lstat(path, &info) == 0 {
                guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw CommandError("\(path) exists and is not a socket") }
                unlink(path)
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let previous = umask(0o117)
            defer { umask(previous) }
            try bindAndListen(fd, &address, listen)
            return (fd, "unix:" + path, path)
        }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]), port > 0 else { throw CommandError("--listen must be unix:PATH or HOST:PORT") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else { throw CommandError("\(parts[0]) is not an IPv4 address") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        try bindAndListen(fd, &address, listen)
        return (fd, listen, nil)
    }

    private static func bindAndListen<Address>(_ fd: Int32, _ address: inout Address, _ name: String) throws {
        guard fd >= 0 else { throw CommandError("socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard bound == 0, listen(fd, 511) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CommandError("cannot listen on \(name): \(reason)")
        }
    }
}
