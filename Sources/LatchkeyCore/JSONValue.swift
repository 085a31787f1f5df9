import FoundationEssentials

/// Any JSON document, for files whose shape is checked by hand to give errors that name the key.
public enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Reads and parses `path`; a syntax error becomes one line naming the file.
    public static func load(path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoreError.file(path: path, reason: "cannot read file")
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw CoreError.file(path: path, reason: "not valid JSON (\(JSONValue.describe(error)))")
        }
    }

    static func describe(_ error: Error) -> String {
        if case let DecodingError.dataCorrupted(context) = error {
            let underlying = (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
            return underlying.split(separator: "\n").first.map(String.init) ?? "syntax error"
        }
        return "syntax error"
    }

    /// This value as a template value; numbers print without a needless `.0`.
    public var templateValue: TemplateValue {
        switch self {
        case .null: return .bool(false)
        case let .bool(b): return .bool(b)
        case let .number(n): return .string(n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n))
        case let .string(s): return .string(s)
        case let .array(a): return .list(a.map(\.templateValue))
        case let .object(o): return .dict(o.mapValues(\.templateValue))
        }
    }
}
