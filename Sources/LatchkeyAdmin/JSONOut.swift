/// JSON for `--json` output, written by hand so key order is stable and nothing is lost.
indirect enum JSONOut {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([JSONOut])
    case object([String: JSONOut])

    var text: String {
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

    static func quote(_ s: String) -> String {
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

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
