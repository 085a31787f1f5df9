
/// Any JSON document, for files whose shape is checked by hand to give errors that name the key.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Reads and parses `path`; a syntax error becomes one line naming the file, line and column.
    public static func load(path: String) throws -> JSONValue {
        guard let data = FileBytes.read(path) else {
            throw CoreError.file(path: path, reason: "cannot read file")
        }
        do {
            return try JSONParser.parse(data)
        } catch let CoreError.file(_, reason) {
            throw CoreError.file(path: path, reason: "not valid JSON: \(reason)")
        }
    }

    /// Parses one JSON document (RFC 8259); a syntax error is a `CoreError` naming line and column.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONParser.parse(bytes) }

    /// Member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    /// The string, when this is one.
    public var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The items, when this is a list.
    public var array: [JSONValue]? {
        if case let .array(items) = self { return items }
        return nil
    }

    /// This value as a template value; numbers print without a needless `.0`.
    public var templateValue: TemplateValue {
        switch self {
        case .null: return .bool(false)
        case let .bool(b): return .bool(b)
        case let .number(n): return .string(n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n))
        case let .string(s): return .string(s)
        case let .array(a): return .list(a.map(\.templateValue))
        case let .object(o): return .dict(Dictionary(o.members.map { ($0.key, $0.value.templateValue) }) { $1 })
        }
    }
}
