import Glibc

/// Starting other programs with `posix_spawn` (Swift offers no `fork`): the sendmail
/// transport, and the detached worker a CGI leaves behind after it has answered.
public enum Subprocess {
    /// What a finished program did.
    public struct Outcome: Sendable {
        /// Exit status, or 128 + signal when it was killed.
        public let status: Int32
        /// Up to `maxCapturedBytes` of its standard error.
        public let stderr: String
        /// True when it was killed for running past the time limit.
        public let timedOut: Bool
    }

    /// Bound on captured stderr: enough for an error line, not a flood.
    public static let maxCapturedBytes = 4096

    /// Runs `path` with `arguments`, feeding `input` on stdin; kills it after `timeout` seconds.
    public static func run(_ path: String, _ arguments: [String], input: [UInt8], timeout: Int64,
                           environment: [String: String]) throws -> Outcome {
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

    /// Starts `path` in a new session with stdin and stdout on /dev/null and stderr appended to
    /// `errorLog` (or /dev/null), and does not wait: the web server sees the CGI finish while
    /// the child carries on.
    public static func detach(_ path: String, _ arguments: [String], environment: [String: String], errorLog: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorLog ?? "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0o640)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(posixSpawnSetsid))
        _ = try spawn(path, arguments, actions: &actions, attributes: &attributes, environment: environment)
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

    /// glibc's POSIX_SPAWN_SETSID, hidden from Swift behind _GNU_SOURCE.
    static let posixSpawnSetsid: Int32 = 0x80

    /// The path of the running executable.
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}
