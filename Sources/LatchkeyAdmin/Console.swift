import Glibc

/// Where a command's output goes: straight to file descriptors 1 and 2, unbuffered, so
/// stdout and stderr lines keep their order and nothing is lost on exit.
public enum Console {
    /// Writes `text` and a newline to standard output.
    public static func out(_ text: String) { write(text + "\n", to: 1) }

    /// Writes `text` and a newline to standard error.
    public static func err(_ text: String) { write(text + "\n", to: 2) }

    /// Writes `text` as it is (no newline) to standard output, for progress lines.
    public static func raw(_ text: String) { write(text, to: 1) }

    private static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue } else { return } }
            bytes = bytes.dropFirst(written)
        }
    }
}
