import CLinux
import Glibc
import LatchkeyCore

/// The pool behind `latchkey serve`: N workers (the CGI executable, which sees the listening
/// socket on descriptor 0 and becomes a FastCGI responder) accepting on one shared socket. The
/// supervisor never opens the database. A worker that exits is replaced; SIGHUP replaces them
/// one at a time, the new one started before the old is told to finish; SIGTERM or SIGINT
/// lets each finish the request in hand, then ends. The socket stays open throughout, so a
/// connection waits in its backlog rather than fail while a worker is replaced.
final class Supervisor {
    private let socket: Int32
    private let program: String
    private let configPath: String
    private let size: Int
    /// Live workers, with when each started (monotonic milliseconds).
    private var workers: [pid_t: Int64] = [:]
    /// Workers told to finish, which are not replaced when they exit.
    private var retiring: Set<pid_t> = []
    /// Workers still to replace in a rolling restart, oldest first.
    private var rolling: [pid_t] = []
    private var stopping = false
    /// Quick deaths in a row, for backing off a worker that cannot start.
    private var failures = 0

    /// How long a stop waits for workers to finish before killing them.
    static let stopSeconds: Int64 = 30

    init(socket: Int32, program: String, configPath: String, workers: Int) {
        self.socket = socket
        self.program = program
        self.configPath = configPath
        size = workers
    }

    /// Runs until told to stop; 0 when every worker ended cleanly.
    func run() -> Int32 {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&signals, signal) }
        sigprocmask(SIG_BLOCK, &signals, nil)
        let events = signalfd(-1, &signals, Int32(SFD_CLOEXEC))
        guard events >= 0 else { return 1 }
        for _ in 0..<size { spawn() }
        var deadline: Int64 = 0
        while !(stopping && workers.isEmpty) {
            if stopping && Clock.now() > deadline {
                for pid in workers.keys { kill(pid, SIGKILL) }
            }
            var fd = pollfd(fd: events, events: Int16(POLLIN), revents: 0)
            // Wake at least once a second: a backed-off spawn, a stop deadline.
            guard poll(&fd, 1, 1000) >= 0 || errno == EINTR else { return 1 }
            if fd.revents != 0 {
                var info = signalfd_siginfo()
                guard read(events, &info, MemoryLayout<signalfd_siginfo>.size) > 0 else { continue }
                switch Int32(info.ssi_signo) {
                case SIGTERM where !stopping, SIGINT where !stopping:
                    stopping = true
                    deadline = Clock.now() + Supervisor.stopSeconds
                    rolling = []
                    log("stopping: each worker finishes its request")
                    for pid in workers.keys { kill(pid, SIGTERM) }
                case SIGHUP where !stopping:
                    rolling = workers.keys.filter { !retiring.contains($0) }.sorted()
                    log("rolling restart of \(rolling.count) workers")
                default:
                    break
                }
            }
            reap()
            if !stopping {
                while workers.count - retiring.count < size && failures < 5 { spawn() }
                if failures >= 5 && workers.isEmpty {
                    // Back off a worker that cannot start: a broken config should not spin.
                    failures = 4
                }
                roll()
            }
        }
        return 0
    }

    /// Replaces the next worker of a rolling restart once the one before it has gone.
    private func roll() {
        guard retiring.isEmpty, let old = rolling.first else { return }
        rolling.removeFirst()
        guard workers[old] != nil else { return roll() }
        spawn()
        retiring.insert(old)
        kill(old, SIGTERM)
    }

    /// Collects exited workers; one that was not retiring is replaced by the loop.
    private func reap() {
        var status: Int32 = 0
        while case let pid = waitpid(-1, &status, WNOHANG), pid > 0 {
            guard let started = workers.removeValue(forKey: pid) else { continue }
            let retired = retiring.remove(pid) != nil
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            if code != 0 { log("worker \(pid) exited with status \(code)") }
            // A worker replacing itself exits 0; only one that fails straight after starting
            // counts toward the back-off.
            failures = code != 0 && Clock.monotonicMilliseconds() - started < 1000 && !retired && !stopping ? failures + 1 : 0
        }
    }

    /// Starts one worker with the socket on its descriptor 0. LATCHKEY_SERVE: a worker to be
    /// replaced exits, and is started again here.
    private func spawn() {
        do {
            let pid = try Subprocess.start(program, input: socket, environment: [
                "LATCHKEY_CONFIG": configPath, "LATCHKEY_SERVE": "1", "PATH": "/usr/local/bin:/usr/bin:/bin"])
            workers[pid] = Clock.monotonicMilliseconds()
        } catch {
            failures += 1
            log("\(error)")
        }
    }

    private func log(_ message: String) {
        Console.err("\(Clock.readable(Clock.now())) latchkey serve: \(message)")
    }
}
