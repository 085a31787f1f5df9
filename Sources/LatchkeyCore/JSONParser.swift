/// A small strict JSON parser (RFC 8259) for config and string tables: every CGI reads the
/// config on every request, and this is many times cheaper than a generic `Decodable` walk.
/// Errors name the line and column.
struct JSONParser {
    /// Deepest nesting accepted; config files are a few levels deep.
    static let maxDepth = 64
    /// Members an object holds before repeated keys are looked for in a set.
    static let smallObject = 32

    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a whole document.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = JSONParser(bytes)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.failure("unexpected text after the JSON value") }
        return value
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw failure("nested too deeply") }
        skipSpace()
        guard index < bytes.count else { throw failure("unexpected end of file") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [JSONObject.Member] = []
            // Repeats are found by comparing keys while an object is small (config objects
            // are) and with a set once it is not, so a large body stays linear.
            var seen: Set<String>?
            skipSpace()
            if peek(UInt8(ascii: "}")) { index += 1; return .object(JSONObject(members: members)) }
            while true {
                skipSpace()
                guard peek(UInt8(ascii: "\"")) else { throw failure("expected a quoted key") }
                let key = try string()
                skipSpace()
                guard peek(UInt8(ascii: ":")) else { throw failure("expected ':' after key \"\(key)\"") }
                index += 1
                if members.count == JSONParser.smallObject { seen = Set(members.map(\.key)) }
                let repeated = seen == nil ? members.contains { $0.key == key } : seen?.insert(key).inserted == false
                guard !repeated else { throw failure("key \"\(key)\" appears twice") }
                members.append(JSONObject.Member(key: key, value: try value(depth: depth + 1)))
                skipSpace()
                if peek(UInt8(ascii: ",")) { index += 1; continue }
                if peek(UInt8(ascii: "}")) { index += 1; return .object(JSONObject(members: members)) }
                throw failure(index < bytes.count ? "expected ',' or '}'" : "unexpected end of file")
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek(UInt8(ascii: "]")) { index += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                if peek(UInt8(ascii: ",")) { index += 1; continue }
                if peek(UInt8(ascii: "]")) { index += 1; return .array(items) }
                throw failure(index < bytes.count ? "expected ',' or ']'" : "unexpected end of file")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    private mutating func string() throws -> String {
        index += 1
        // Most strings hold no escape: take them as one slice.
        var end = index, ascii = true
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 {
            ascii = ascii && bytes[end] < 0x80
            end += 1
        }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            // ASCII needs no UTF-8 validation (and validating is the slow part).
            guard let text = ascii ? String(decoding: bytes[index..<end], as: UTF8.self) : String(validating: bytes[index..<end], as: UTF8.self) else {
                throw failure("string is not valid UTF-8")
            }
            index = end + 1
            return text
        }
        var out: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw failure("string is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), peek(UInt8(ascii: "\\")), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                    out += Array(String(Character(unicode)).utf8)
                default: throw failure("invalid escape \\\(Character(Unicode.Scalar(escape)))")
                }
            default:
                guard byte >= 0x20 else { throw failure("control character in a string") }
                out.append(byte)
            }
        }
        throw failure("string not closed")
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
            throw failure("invalid \\u escape")
        }
        index += 4
        return value
    }

    private mutating func number() throws -> Double {
        let start = index
        while index < bytes.count, JSONParser.isNumberByte(bytes[index]) { index += 1 }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard !text.isEmpty, let value = Double(text), !text.hasPrefix("+"), !text.hasPrefix("."), !text.hasSuffix("."),
              value.isFinite else {
            index = start
            throw failure("unexpected character")
        }
        return value
    }

    private mutating func literal(_ word: String) throws {
        let expected = Array(word.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw failure("unexpected character")
        }
        index += expected.count
    }

    /// A digit, sign, point or exponent mark.
    static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return true
        default: return false
        }
    }

    private func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// An error at the current position, as `line L, column C: reason`.
    private func failure(_ reason: String) -> CoreError {
        var line = 1, column = 1
        for byte in bytes[..<min(index, bytes.count)] {
            if byte == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return CoreError.file(path: "", reason: "line \(line), column \(column): \(reason)")
    }
}
