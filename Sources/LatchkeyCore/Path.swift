import Glibc

/// File path arithmetic on plain strings, POSIX style, on UTF-8 bytes: a slash is one byte,
/// and this runs for every path a CGI resolves, where splitting into substrings costs more
/// than the rest of the arithmetic.
public enum Path {
    private static let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")

    /// `path` made absolute against the current directory.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let here = getcwd(&buffer, buffer.count).map { String(cString: $0) } ?? "/"
        return join(here, path)
    }

    /// `relative` resolved against `base`, unless it is already absolute.
    public static func join(_ base: String, _ relative: String) -> String {
        relative.hasPrefix("/") ? normalize(relative) : normalize(base + "/" + relative)
    }

    /// The folder that holds `path`.
    public static func parent(of path: String) -> String {
        var bytes = Array(normalize(path).utf8)
        while let last = bytes.popLast(), last != slash {}
        return bytes.isEmpty ? "/" : String(decoding: bytes, as: UTF8.self)
    }

    /// The last component of `path`.
    public static func basename(_ path: String) -> String {
        let bytes = Array(path.utf8)
        var end = bytes.count
        while end > 0, bytes[end - 1] == slash { end -= 1 }
        var start = end
        while start > 0, bytes[start - 1] != slash { start -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Removes `.`, `..` and doubled slashes; the result starts with a slash.
    public static func normalize(_ path: String) -> String {
        let bytes = Array(path.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 1)
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != slash { end += 1 }
            switch end - start {
            case 0: break
            case 1 where bytes[start] == dot: break
            case 2 where bytes[start] == dot && bytes[start + 1] == dot:
                while let last = out.popLast(), last != slash {}
            default:
                out.append(slash)
                out.append(contentsOf: bytes[start..<end])
            }
            start = end + 1
        }
        return out.isEmpty ? "/" : String(decoding: out, as: UTF8.self)
    }

    /// True when `path` is `folder` or lies inside it.
    public static func isInside(_ path: String, _ folder: String) -> Bool {
        let p = normalize(path), f = normalize(folder)
        return p == f || p.hasPrefix(f == "/" ? "/" : f + "/")
    }
}
