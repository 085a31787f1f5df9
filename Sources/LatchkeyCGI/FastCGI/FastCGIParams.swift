/// The name-value pairs of a PARAMS stream or a GET_VALUES body (FastCGI 1.0, §3.4): each length
/// is one byte below 128, else four bytes with the top bit set. Every length is checked against
/// what is left before it is used (CVE-2025-23016 was a libfcgi params parser that did not).
public enum FastCGIParams {
    /// Why a params stream was refused.
    public enum Failure: Error, Equatable { case truncated, tooMany, notText }

    /// Most pairs one request may carry: a browser request has a few dozen.
    public static let maxPairs = 512

    /// The pairs of `bytes`, in order; the whole stream must be well formed. Names and values
    /// must be UTF-8 (servers pass header bytes through; anything else is refused, not guessed).
    /// With `keeping`, only those names' pairs are returned (every pair is still checked).
    public static func decode(_ bytes: [UInt8], keeping: Set<String>? = nil) throws(Failure) -> [(String, String)] {
        var pairs: [(String, String)] = []
        var index = 0
        func length() throws(Failure) -> Int {
            guard index < bytes.count else { throw .truncated }
            let first = bytes[index]
            if first < 0x80 {
                index += 1
                return Int(first)
            }
            guard bytes.count - index >= 4 else { throw .truncated }
            let value = Int(first & 0x7f) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            index += 4
            return value
        }
        while index < bytes.count {
            guard pairs.count < maxPairs else { throw .tooMany }
            let nameLength = try length()
            let valueLength = try length()
            // Both lengths are at most 2^31 - 1, so the sum cannot overflow an Int.
            guard nameLength + valueLength <= bytes.count - index else { throw .truncated }
            let name = bytes[index..<(index + nameLength)]
            let value = bytes[(index + nameLength)..<(index + nameLength + valueLength)]
            index += nameLength + valueLength
            guard let n = String(validating: name, as: UTF8.self) else { throw .notText }
            if let keeping, !keeping.contains(n) {
                // Still text, as a kept one must be; checked without making a String of it.
                guard value.allSatisfy({ $0 < 0x80 }) || String(validating: value, as: UTF8.self) != nil else { throw .notText }
                continue
            }
            guard let v = String(validating: value, as: UTF8.self) else { throw .notText }
            pairs.append((n, v))
        }
        return pairs
    }

    /// The wire form of `pairs`.
    public static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        func length(_ count: Int) {
            if count < 0x80 {
                out.append(UInt8(count))
            } else {
                out += [UInt8(0x80 | (count >> 24) & 0x7f), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
            }
        }
        for (name, value) in pairs {
            length(name.utf8.count)
            length(value.utf8.count)
            out += name.utf8
            out += value.utf8
        }
        return out
    }
}
