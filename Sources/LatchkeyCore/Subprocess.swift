import Glibc

/// Other processes: the sendmail transport (`posix_spawn`), and the detached child a CGI
/// leaves behind after it has answered (`fork`).
public enum Subprocess {
    /// What a finished program did.
    public struct Outcome: Sendable {
        /// Exit status, or 128 + signal when it was killed.
        public let status: Int32
        /// Up to the capture limit of its standard error.
        public let stderr: String
        /// True when it was killed for running past the time limit.
        public let timedOut: Bool
    }

    /// Bound on captured stderr: enough for an error line, not a flood.
    public static let maxCapturedBytes = 4096

    /// Runs `path` with `arguments`, feeding `input` on stdin; kills it after `timeout` seconds.
    /// Keeps up to `captureLimit` bytes of its standard error.
    public static func run(_ path: String, _ arguments: [String], input: [UInt8], timeout: Int64,
                           environment: [String: String], captureLimit: Int = maxCapturedBytes) throws -> Outcome {
        let maxCapturedBytes = captureLimit
        var inPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&errPipe) == 0 else { throw CoreError.file(path: path, reason: "cannot create a pipe") }
        // Close-on-exec, so the child holds only the ends dup2'd onto its 0 and 2 and sees EOF.
        for fd in inPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let pid = try spawn(path, arguments, actions: &actions, attributes: nil, environment: environment)
        close(inPipe[0]); close(errPipe[1])
        signal(SIGPIPE, SIG_IGN)
        var remaining = input[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(inPipe[1], $0.baseAddress, $0.count) }
            if written <= 0 { if errno == EINTR { continue } else { break } }
            remaining = remaining.dropFirst(written)
        }
        close(inPipe[1])
        let flags = fcntl(errPipe[0], F_GETFL)
        _ = fcntl(errPipe[0], F_SETFL, flags | O_NONBLOCK)
        var captured: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        let deadline = Clock.now() + timeout
        var status: Int32 = 0, timedOut = false
        while true {
            let n = read(errPipe[0], &buffer, buffer.count)
            if n > 0 && captured.count < maxCapturedBytes { captured += buffer.prefix(min(n, maxCapturedBytes - captured.count)) }
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if Clock.now() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                timedOut = true
                break
            }
            if n <= 0 { usleep(2000) }
        }
        while case let n = read(errPipe[0], &buffer, buffer.count), n > 0, captured.count < maxCapturedBytes {
            captured += buffer.prefix(min(n, maxCapturedBytes - captured.count))
        }
        close(errPipe[0])
        let exit: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exit, stderr: String(decoding: captured, as: UTF8.self), timedOut: timedOut)
    }

    /// Which side of `forkDetached` a process is on.
    public enum Side { case parent, child }

    /// Forks a child that leaves the caller's session, with stdin and stdout on /dev/null and
    /// stderr appended to `errorLog`: the web server sees the CGI end when the parent exits
    /// while the child carries on. Forking (not starting a new program) means the child keeps
    /// the parsed config and pays no second start-up. Call it with no database open: SQLite
    /// connections must not cross a fork.
    public static func forkDetached(errorLog: String) throws -> Side {
        // lighttpd sends SIGTERM as soon as it has the answer; one that lands between fork()
        // and setsid() must not kill the child.
        let previous = signal(SIGTERM, SIG_IGN)
        let pid = fork()
        if pid != 0 {
            signal(SIGTERM, previous)
            guard pid > 0 else { throw CoreError.file(path: "fork", reason: String(cString: strerror(errno))) }
            return .parent
        }
        _ = setsid()
        signal(SIGTERM, SIG_DFL)
        // A FastCGI worker blocks its stop signals (it reads them from a signalfd); the
        // drainer must stay stoppable, and so must the programs it runs.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        endAnswer(errorLog: errorLog)
        return .child
    }

    /// Tells the web server this CGI's answer is complete while the process goes on: standard
    /// input and output to /dev/null (mod_cgid gives a CGI one socket for both, and waits for it
    /// to close), standard error appended to `errorLog` (fcgiwrap and mod_cgi wait for that pipe
    /// too). Call it once the request body has been read, with SIGTERM ignored since before the
    /// answer was written: lighttpd sends it as soon as it has the answer, Apache when it cleans
    /// up the request.
    public static func endAnswer(errorLog: String) {
        redirect(0, "/dev/null", O_RDONLY)
        redirect(1, "/dev/null", O_WRONLY)
        redirect(2, errorLog, O_WRONLY | O_APPEND | O_CREAT)
    }

    /// Points `fd` at `path` (or /dev/null when that cannot be opened).
    static func redirect(_ fd: Int32, _ path: String, _ flags: Int32) {
        var opened = open(path, flags | O_CLOEXEC, 0o640)
        if opened < 0 { opened = open("/dev/null", O_RDWR | O_CLOEXEC) }
        guard opened >= 0 else { return }
        _ = dup2(opened, fd)
        if opened != fd { close(opened) }
    }

    /// Starts `path` with `input` as its standard input, standard output on /dev/null, standard
    /// error shared with this process, no signal blocked, and only `environment`; returns its pid
    /// without waiting (`latchkey serve`'s workers, given the listening socket).
    public static func start(_ path: String, input: Int32, environment: [String: String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        return try spawn(path, [], actions: &actions, attributes: &attributes, environment: environment)
    }

    private static func spawn(_ path: String, _ arguments: [String], actions: inout posix_spawn_file_actions_t,
                              attributes: UnsafeMutablePointer<posix_spawnattr_t>?, environment: [String: String]) throws -> pid_t {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, attributes, argv, envp)
        guard status == 0 else {
            throw CoreError.file(path: path, reason: "cannot run: \(String(cString: strerror(status)))")
        }
        return pid
    }


    /// The path of the running executable.
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}
