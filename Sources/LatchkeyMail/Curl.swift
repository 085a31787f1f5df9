import Glibc
import LatchkeyCore

/// The system's `curl`, Latchkey's one HTTP client (webhooks, Stripe's API): a static CGI
/// carries no TLS library of its own, and curl is on every host that runs a web server. It
/// runs with no environment (no proxy variable reaches it), a hard time limit, no redirects
/// followed, and everything that may be secret (URL, credentials, headers, body) given on
/// standard input as its config, never on a command line other users can read.
enum Curl {
    /// What came back.
    struct Answer {
        /// The HTTP status; nil when no answer came.
        let status: Int?
        /// The body, when it was asked for.
        let body: String
        /// curl's own error lines, and a timeout.
        let errors: String
    }

    /// Where curl is.
    static let path: String? = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"].first { access($0, X_OK) == 0 }

    /// Makes one request from `settings` (curl config names and values: `url`, `header`,
    /// `data-binary`, `user`); `keepBody` returns the answer's body (up to 1 MiB).
    static func request(_ settings: [(String, String)], keepBody: Bool, timeout: Int64) throws -> Answer {
        guard let path else { throw MailError("curl is not installed (apt install curl)") }
        let config = settings.map { $0.0 + " = " + quoted($0.1) + "\n" }.joined()
        let arguments = ["--silent", "--show-error", "--max-time", String(timeout), "--proto", "=https,http", "--config", "-",
                         "--output", keepBody ? "/dev/stderr" : "/dev/null", "--write-out", "%{stderr}\n" + marker + "%{http_code}\n"]
        let outcome = try Subprocess.run(path, arguments, input: Array(config.utf8), timeout: timeout + 5, environment: [:],
                                         captureLimit: keepBody ? 1 << 20 : Subprocess.maxCapturedBytes)
        let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        let at = lines.lastIndex { $0.hasPrefix(marker) }
        let status = at.flatMap { Int(lines[$0].dropFirst(marker.count)) }.flatMap { $0 == 0 ? nil : $0 }
        let before = at.map { lines[..<$0] } ?? lines[...]
        var errors = keepBody ? [] : before.filter { !$0.isEmpty }.map(String.init)
        if outcome.timedOut { errors.append("no answer within \(timeout) s") }
        return Answer(status: status, body: keepBody ? before.joined(separator: "\n") : "", errors: errors.joined(separator: "; "))
    }

    /// Marks the status line curl writes after everything else.
    static let marker = "latchkey-status "

    /// `text` as a curl config string: in double quotes, with `\\` and `"` escaped (our
    /// payloads and URLs hold no raw control characters; JSON escapes its own).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text {
            if character == "\\" || character == "\"" { out.append("\\") }
            out.append(character)
        }
        return out + "\""
    }
}
