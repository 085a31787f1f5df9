/// JSON written out (`--json`, the API, webhook payloads), by hand so key order is stable
/// and nothing is lost.
public indirect enum JSONOut: Sendable, Equatable {
    /// A string.
    case string(String)
    /// A whole number.
    case int(Int64)
    /// true or false.
    case bool(Bool)
    /// null.
    case null
    /// A list.
    case array([JSONOut])
    /// An object, written with its keys sorted.
    case object([String: JSONOut])

    /// A string, or null when `value` is nil.
    public static func optional(_ value: String?) -> JSONOut { value.map { .string($0) } ?? .null }

    /// The compact JSON text.
    public var text: String {
        switch self {
        case let .string(s): return JSONOut.quote(s)
        case let .int(n): return String(n)
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case let .object(members):
            return "{" + members.sorted { $0.key < $1.key }.map { JSONOut.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u00" + String(scalar.value, radix: 16).leftPadded(to: 2) }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
