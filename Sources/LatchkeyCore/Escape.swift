/// Escaping chosen by output context, by name. Unescaped output is spelled `raw` elsewhere.
public enum Escape {
    /// Text between HTML tags: `& < > " '` become entities, so the same result is also
    /// safe inside a quoted attribute value.
    public static func html(_ text: String) -> String {
        // On UTF-8 bytes: the five are ASCII, so no multi-byte character is ever split.
        let special: (UInt8) -> Bool = { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }
        guard text.utf8.contains(where: special) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 32)
        for byte in text.utf8 {
            switch byte {
            case 0x26: out.append(contentsOf: "&amp;".utf8)
            case 0x3C: out.append(contentsOf: "&lt;".utf8)
            case 0x3E: out.append(contentsOf: "&gt;".utf8)
            case 0x22: out.append(contentsOf: "&quot;".utf8)
            case 0x27: out.append(contentsOf: "&#39;".utf8)
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A quoted HTML attribute value; identical to `html`, named for the reader.
    public static func attribute(_ text: String) -> String { html(text) }

    /// One component of a URL query or path: everything but RFC 3986 unreserved
    /// characters is percent-encoded as UTF-8.
    public static func urlComponent(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension StringProtocol {
    /// True when `needle` occurs here, compared byte for byte. The checks that use it look for
    /// ASCII marks; the standard library's `contains(_: String)` brings in a general string
    /// searcher whose code and metadata every CGI start would pay for.
    public func includes(_ needle: String) -> Bool {
        let text = Array(utf8), pattern = Array(needle.utf8)
        guard let first = pattern.first else { return true }
        guard text.count >= pattern.count else { return false }
        for i in 0...(text.count - pattern.count) where text[i] == first && text[i..<i + pattern.count].elementsEqual(pattern) {
            return true
        }
        return false
    }
}

extension String {
    /// True when any character is a C0 control (CR, LF, NUL, tab…) or DEL: such text must
    /// never reach a mail header or a log line.
    public var hasControlCharacters: Bool {
        // Bytes, not scalars: every control character is one byte below 0x80 in UTF-8.
        utf8.contains { $0 < 0x20 || $0 == 0x7f }
    }

    /// The string without leading and trailing spaces, tabs and line breaks.
    public var trimmed: String {
        // On UTF-8 bytes: the four are ASCII, so the cut always falls between characters.
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard let start = utf8.firstIndex(where: { !isSpace($0) }),
              let end = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }

    /// Padded on the left with zeros to `width` characters.
    public func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
