import Glibc

/// The fields of an `application/x-www-form-urlencoded` body or query string.
///
/// Strict on purpose: invalid percent-encoding, invalid UTF-8, control characters (NUL, CR,
/// LF…) in any field, and a field given twice are all refused with 400 before any handler runs.
public struct FormData: Sendable {
    /// Largest form body read: three 128-character passwords of 4-byte characters,
    /// percent-encoded, plus an email and the locale, fit in under 5 KiB.
    public static let maxBodyBytes = 8192

    private var fields: [String: String] = [:]
    private var lists: [String: [String]] = [:]

    /// Parses `bytes`. Only the fields named in `repeatable` may come more than once (the
    /// console's checked `ids`); read them with `all`.
    public init(urlEncoded bytes: [UInt8], repeatable: Set<String> = []) throws {
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try FormData.decode(parts[0])
            let value = parts.count == 2 ? try FormData.decode(parts[1]) : ""
            if repeatable.contains(name) {
                lists[name, default: []].append(value)
                continue
            }
            guard fields[name] == nil else { throw HTTPError(400, "field '\(name.prefix(40))' given twice") }
            fields[name] = value
        }
    }

    /// Every value of a repeatable field, in order.
    public func all(_ name: String) -> [String] { lists[name] ?? [] }

    /// Reads and parses the request body from standard input: the content type must be a
    /// form, the length declared and within bounds, and the body exactly that long. A POST with
    /// no body at all (`CONTENT_LENGTH` 0, or neither a length nor a type) is an empty form:
    /// scripts, `fetch(url, {method: "POST"})` and some proxies send a bare POST to log out.
    public static func readBody(_ request: CGIRequest, from fd: Int32 = 0, repeatable: Set<String> = []) throws -> FormData {
        if request.contentLength == 0 || (request.contentLength == nil && request.contentType == nil) {
            return try FormData(urlEncoded: [])
        }
        let type = request.contentType?.split(separator: ";").first.map { String($0).trimmed.lowercased() }
        guard type == "application/x-www-form-urlencoded" else {
            throw HTTPError(415, "content type \(request.contentType?.prefix(60) ?? "missing") is not a form")
        }
        return try FormData(urlEncoded: try readBytes(request, from: fd, limit: maxBodyBytes), repeatable: repeatable)
    }

    /// Reads exactly the declared body from `fd` (or the FastCGI body already read): 411 without a length, 413 beyond `limit`,
    /// 400 when it ends early. The content type is the caller's to check.
    public static func readBytes(_ request: CGIRequest, from fd: Int32 = 0, limit: Int) throws -> [UInt8] {
        guard let length = request.contentLength else { throw HTTPError(411, "CONTENT_LENGTH missing") }
        guard length >= 0 else { throw HTTPError(400, "CONTENT_LENGTH is not a number") }
        guard length <= limit else { throw HTTPError(413, "body of \(length) bytes exceeds \(limit)") }
        if let read = request.body {
            guard read.count >= length else { throw HTTPError(400, "body shorter than CONTENT_LENGTH (\(read.count) of \(length) bytes)") }
            return Array(read.prefix(length))
        }
        var body = [UInt8](repeating: 0, count: length)
        var filled = 0
        while filled < length {
            let n = body.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, length - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HTTPError(400, "body shorter than CONTENT_LENGTH (\(filled) of \(length) bytes)") }
            filled += n
        }
        return body
    }

    /// The value of `name`, if present.
    public subscript(name: String) -> String? { fields[name] }

    static func decode(_ raw: ArraySlice<UInt8>) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var index = raw.startIndex
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < raw.endIndex,
                      let high = hexValue(raw[index + 1]), let low = hexValue(raw[index + 2]) else {
                    throw HTTPError(400, "invalid percent-encoding")
                }
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw HTTPError(400, "field is not valid UTF-8") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw HTTPError(400, "control character in a field")
        }
        return text
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
