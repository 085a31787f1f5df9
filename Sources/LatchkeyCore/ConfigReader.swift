/// Walks one object of a JSON config, knowing its dotted path, so every error names the key.
struct ConfigReader {
    let value: JSONValue
    let path: String
    let file: String

    private var members: JSONObject {
        if case let .object(o) = value { return o }
        return [:]
    }

    func error(_ key: String, _ reason: String) -> CoreError {
        .config(file: file, key: path.isEmpty ? key : path + "." + key, reason: reason)
    }

    /// Rejects keys this object does not know, so a typo is reported instead of ignored. A list,
    /// not a set: a handful of short names compare for less than building a hash table each time.
    func allow(_ known: [String]) throws {
        guard case .object = value else {
            throw CoreError.config(file: file, key: path.isEmpty ? "(top level)" : path, reason: "must be an object")
        }
        if let unknown = members.lazy.map(\.key).filter({ !known.contains($0) }).min() {
            throw error(unknown, "unknown key (known keys: \(known.sorted().joined(separator: ", ")))")
        }
    }

    func object(_ key: String) throws -> ConfigReader {
        let child = ConfigReader(value: members[key] ?? .object([:]), path: path.isEmpty ? key : path + "." + key, file: file)
        guard case .object = child.value else { throw error(key, "must be an object") }
        return child
    }

    func list(_ key: String) throws -> [ConfigReader] {
        guard let raw = members[key] else { return [] }
        guard case let .array(items) = raw else { throw error(key, "must be a list") }
        return items.enumerated().map { ConfigReader(value: $1, path: "\(path.isEmpty ? key : path + "." + key)[\($0)]", file: file) }
    }

    func string(_ key: String, default fallback: String, nonEmpty: Bool = false,
                valid: (String) -> Bool = { _ in true }, reason: () -> String = { "is not valid" }) throws -> String {
        guard let raw = members[key] else {
            if nonEmpty && fallback.isEmpty { throw error(key, "is required") }
            return fallback
        }
        guard case let .string(s) = raw else { throw error(key, "must be a string") }
        if nonEmpty && s.trimmed.isEmpty { throw error(key, "must not be empty") }
        guard valid(s) else { throw error(key, "'\(s)' \(reason())") }
        return s
    }

    func strings(_ key: String, default fallback: [String]) throws -> [String] {
        guard let raw = members[key] else { return fallback }
        guard case let .array(items) = raw else { throw error(key, "must be a list of strings") }
        return try items.map { item in
            guard case let .string(s) = item else { throw error(key, "must be a list of strings") }
            return s
        }
    }

    /// An object whose every value is a string (the keys are the caller's to check).
    func stringMap(_ key: String) throws -> [String: String] {
        guard let raw = members[key] else { return [:] }
        guard case let .object(items) = raw else { throw error(key, "must be an object of strings") }
        var strings: [String: String] = [:]
        for item in items {
            guard case let .string(s) = item.value else { throw error(key, "must be an object of strings") }
            strings[item.key] = s
        }
        return strings
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let raw = members[key] else { return fallback }
        guard case let .bool(b) = raw else { throw error(key, "must be true or false") }
        return b
    }

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = members[key] else { return fallback }
        guard case let .number(n) = raw, n == n.rounded(), n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
            throw error(key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(n)
    }

    func span(_ key: String, default fallback: TimeSpan) throws -> TimeSpan {
        guard let raw = members[key] else { return fallback }
        guard case let .string(s) = raw, let span = TimeSpan(s) else {
            throw error(key, "must be a duration like 90s, 30m, 24h or 7d")
        }
        return span
    }

    func limit(_ key: String, default fallback: SiteConfig.Limit) throws -> SiteConfig.Limit {
        guard members[key] != nil else { return fallback }
        let limit = try object(key)
        try limit.allow(["count", "window"])
        return SiteConfig.Limit(count: try limit.int("count", default: fallback.count, range: 1...1_000_000),
                                window: try limit.span("window", default: fallback.window))
    }
}
