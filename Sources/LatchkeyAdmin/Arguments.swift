/// A command line split into words, `--option value` pairs and `--flag`s.
public struct Arguments {
    /// Options that take a value; every other `--word` is a flag.
    static let valued: Set<String> = ["config", "name", "offer", "listen", "runtime-dir", "cgi-dir", "url", "tls-cert", "tls-key", "user",
                                        "role", "person", "actor", "action", "since", "scopes", "workers", "fastcgi-listen"]

    /// Positional words, the command's own name first.
    public var words: [String] = []
    /// `--option value` pairs.
    public var options: [String: String] = [:]
    /// `--flag`s present.
    public var flags: Set<String> = []

    /// Splits `argv` (without the program name). `--option=value` is accepted too.
    public init(_ argv: [String]) throws {
        var index = 0
        while index < argv.count {
            let word = argv[index]
            index += 1
            if word == "--" { words += argv[index...]; break }
            guard word.hasPrefix("--") else {
                if word == "-h" { flags.insert("help") } else { words.append(word) }
                continue
            }
            var name = String(word.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if Arguments.valued.contains(name) {
                if value == nil {
                    guard index < argv.count else { throw CommandError("--\(name) needs a value") }
                    value = argv[index]
                    index += 1
                }
                options[name] = value
            } else {
                guard value == nil else { throw CommandError("--\(name) takes no value") }
                flags.insert(name)
            }
        }
    }

    /// Fails on any option or flag the command does not take.
    public func allow(_ allowed: Set<String>) throws {
        let given = Set(options.keys).union(flags)
        if let unknown = given.subtracting(allowed.union(["config", "help"])).sorted().first {
            throw CommandError("unknown option --\(unknown) (see --help)")
        }
    }

    /// The positional word at `index` after the command words, or an error naming what is missing.
    public func word(_ index: Int, _ what: String) throws -> String {
        guard index < words.count, !words[index].isEmpty else { throw CommandError("missing \(what)") }
        return words[index]
    }
}
