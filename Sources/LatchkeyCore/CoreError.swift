/// Everything that can go wrong in the core library, each case a sentence for a person.
public enum CoreError: Error, Equatable, CustomStringConvertible {
    /// A config key is missing, malformed or unknown.
    case config(file: String, key: String, reason: String)
    /// A template does not parse or refers to something that does not exist.
    case template(file: String, line: Int, reason: String)
    /// A locale table is missing or incomplete.
    case locale(file: String, key: String, reason: String)
    /// libsodium refused an operation (out of memory, bad parameters).
    case crypto(String)
    /// A file could not be read or written.
    case file(path: String, reason: String)

    public var description: String {
        switch self {
        case let .config(file, key, reason): return "\(file): \(key): \(reason)"
        case let .template(file, line, reason): return "\(file):\(line): \(reason)"
        case let .locale(file, key, reason): return "\(file): \(key): \(reason)"
        case let .crypto(reason): return "crypto: \(reason)"
        case let .file(path, reason): return "\(path): \(reason)"
        }
    }
}
