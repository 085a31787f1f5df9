import Glibc

/// The process environment, read once at the executable's edge and passed down as a value.
public enum Environment {
    /// Every variable of the process, as a dictionary.
    public static func current() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    /// Only the variables in `names` that are set: a CGI reads a dozen of the thirty or so a
    /// web server passes, and each one copied costs start-up time.
    public static func current(_ names: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { result[name] = String(cString: value) }
        }
        return result
    }
}
