import FoundationEssentials

/// File path arithmetic on plain strings, POSIX style.
public enum Path {
    /// `path` made absolute against the current directory.
    public static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? normalize(path) : join(FileManager.default.currentDirectoryPath, path)
    }

    /// `relative` resolved against `base`, unless it is already absolute.
    public static func join(_ base: String, _ relative: String) -> String {
        relative.hasPrefix("/") ? normalize(relative) : normalize(base + "/" + relative)
    }

    /// The folder that holds `path`.
    public static func parent(of path: String) -> String {
        let parts = components(normalize(path))
        return slashJoined(parts.dropLast())
    }

    /// The last component of `path`.
    public static func basename(_ path: String) -> String {
        String(components(path).last ?? "")
    }

    /// Removes `.`, `..` and doubled slashes.
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in components(path) {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return slashJoined(parts[...])
    }

    /// The non-empty parts between slashes. Split on UTF-8 bytes: a slash is one byte, and
    /// this runs for every path a CGI resolves, where splitting by `Character` costs more.
    static func components(_ path: String) -> [Substring] {
        path.utf8.split(separator: UInt8(ascii: "/")).map { Substring($0) }
    }

    /// `/a/b/c` from `[a, b, c]`. A plain loop: the generic `joined(separator:)` looks up
    /// protocol conformances at run time, which costs a CGI more than its whole config parse.
    static func slashJoined(_ parts: ArraySlice<Substring>) -> String {
        guard !parts.isEmpty else { return "/" }
        var result = ""
        for part in parts {
            result += "/"
            result += String(part)
        }
        return result
    }

    /// True when `path` is `folder` or lies inside it.
    public static func isInside(_ path: String, _ folder: String) -> Bool {
        let p = normalize(path), f = normalize(folder)
        return p == f || p.hasPrefix(f == "/" ? "/" : f + "/")
    }
}
