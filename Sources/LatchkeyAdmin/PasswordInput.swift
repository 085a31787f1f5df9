import Glibc

/// Reads a password the way `passwd` does: from the terminal without echo, asked twice, or
/// from the first line of stdin when it is piped. Never from the command line, where `ps`
/// and shell history would keep it.
enum PasswordInput {
    /// Longest line read from stdin.
    static let maxBytes = 4096

    static func read() throws -> String {
        guard isatty(0) == 1 else {
            guard let line = readLine(echo: true), !line.isEmpty else { throw CommandError("no password on stdin") }
            return line
        }
        let first = try prompt("New password: ")
        let second = try prompt("Again: ")
        guard first == second else { throw CommandError("the two passwords differ; nothing changed") }
        return first
    }

    private static func prompt(_ text: String) throws -> String {
        Console.raw(text)
        defer { Console.out("") }
        guard let line = readLine(echo: false) else { throw CommandError("no password entered") }
        return line
    }

    private static func readLine(echo: Bool) -> String? {
        var saved = termios()
        let isTerminal = tcgetattr(0, &saved) == 0
        if isTerminal && !echo {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &quiet)
        }
        defer { if isTerminal && !echo { tcsetattr(0, TCSAFLUSH, &saved) } }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < maxBytes, Glibc.read(0, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
