import Glibc
import LatchkeyCore

/// Where messages go: a Maildir, or the Unix `sendmail` interface (postfix, exim, msmtp).
public enum Transport: Sendable, Equatable {
    case maildir(String)
    case sendmail(String)

    /// The transport named by `mail.transport`, with its path made absolute.
    public init(config: SiteConfig) {
        let parts = config.mail.transport.split(separator: ":", maxSplits: 1).map(String.init)
        let path = parts.count == 2 ? parts[1] : ""
        self = parts[0] == "sendmail" ? .sendmail(path.hasPrefix("/") ? path : config.resolve(path))
                                      : .maildir(config.resolve(path))
    }

    /// Hands `message` over; throws `MailError` with the reason when it was not accepted.
    public func send(_ message: [UInt8], timeout: TimeSpan) throws {
        switch self {
        case let .maildir(folder): try Transport.deliverToMaildir(message, folder: folder)
        case let .sendmail(program):
            let outcome: Subprocess.Outcome
            do {
                outcome = try Subprocess.run(program, ["-t", "-i"], input: message, timeout: timeout.seconds,
                                             environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
            } catch {
                throw MailError("\(error)")
            }
            if outcome.timedOut { throw MailError("\(program) did not finish within \(timeout) and was stopped") }
            guard outcome.status == 0 else {
                let detail = outcome.stderr.split(separator: "\n").first.map { ": " + $0 } ?? ""
                throw MailError("\(program) exited with status \(outcome.status)\(detail)")
            }
        }
    }

    /// Maildir delivery: write under `tmp/`, flush to disk, then rename into `new/`, so a
    /// reader never sees half a message.
    static func deliverToMaildir(_ message: [UInt8], folder: String) throws {
        for sub in ["tmp", "new", "cur"] {
            do { try FileTree.makeDirectories(folder + "/" + sub) } catch {
                throw MailError("cannot create Maildir \(folder)/\(sub): \(error)")
            }
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .replacingAll("/", with: "\\057").replacingAll(":", with: "\\072")
        let unique = "\(Clock.now()).P\(getpid())R\(Sodium.hex(Sodium.randomBytes(8))).\(hostName)"
        let temporary = folder + "/tmp/" + unique
        do {
            try FileTree.write(message, to: temporary, mode: 0o640, exclusive: true, flush: true)
        } catch {
            throw MailError("\(error)")
        }
        guard rename(temporary, folder + "/new/" + unique) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw MailError("cannot move message into \(folder)/new: \(reason)")
        }
    }
}
