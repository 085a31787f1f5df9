import Glibc

/// What goes back to the web server: a status, headers and a body, written in one piece.
public struct CGIResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// Extra headers, in order; the security headers are added when written.
    public var headers: [(String, String)]
    /// The response body bytes.
    public var body: [UInt8]
    /// A file to stream after the headers instead of `body` (the members gate).
    public var file: FileBody?
    /// False for what is not one of Latchkey's pages (a members file, an authorizer's yes): the
    /// site's own pages and media must not inherit the pages' policy, which forbids media,
    /// scripts and framing. They keep `nosniff`.
    public var isPage = true

    /// Part of a file, read and written in pieces so its size does not matter.
    public struct FileBody: Sendable {
        /// The file.
        public let path: String
        /// Where the part starts, and how long it is.
        public let offset: Int64, length: Int64
        /// True for HEAD: the headers say what GET would send, and no body follows.
        public let headOnly: Bool
    }

    /// Headers on every CGI answer: nothing is cached, nothing leaks in a Referer, nothing
    /// frames the page, and the page may load nothing from elsewhere.
    static let securityHeaders: [(String, String)] = [
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ]

    /// A response with `status`, extra `headers` and `body`.
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `303 See Other` to an absolute URL: the post/redirect/get step after every form.
    public static func redirect(to url: String, headers: [(String, String)] = []) -> CGIResponse {
        CGIResponse(status: 303, headers: [("Location", url)] + headers)
    }

    /// An HTML page with `status`.
    public static func page(status: Int, html: String, headers: [(String, String)] = []) -> CGIResponse {
        CGIResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")] + headers, body: Array(html.utf8))
    }

    /// The bytes of the CGI answer (RFC 3875 §6): `Status`, headers, blank line, body.
    public func serialized() -> [UInt8] {
        // Appended as bytes: string interpolation would build and copy a String per header.
        var out: [UInt8] = []
        out.reserveCapacity(768 + body.count)
        func header(_ name: String, _ value: String) {
            out += name.utf8
            out += ": ".utf8
            out += value.utf8
            out += "\r\n".utf8
        }
        header("Status", String(status) + " " + CGIResponse.reason(status))
        // A handler may set its own value for one of them (the console allows its own script).
        for (name, value) in CGIResponse.securityHeaders where (isPage || name == "X-Content-Type-Options")
            && !headers.contains(where: { $0.0 == name }) { header(name, value) }
        for (name, value) in headers { header(name, value) }
        // A file handed back to the server (X-Sendfile, X-Accel-Redirect) gets the server's length.
        if !headers.contains(where: { $0.0 == "X-Sendfile" || $0.0 == "X-Accel-Redirect" }) {
            header("Content-Length", String(file?.length ?? Int64(body.count)))
        }
        out += "\r\n".utf8
        out += body
        return out
    }

    /// Writes the answer to standard output in one `write` loop, so nothing is buffered and lost;
    /// a file body follows, copied by the kernel (`sendfile`) where it can be.
    public func write(to fd: Int32 = 1) {
        write(sendfileTo: fd) { CGIResponse.writeAll($0, to: fd) }
    }

    /// Writes the answer through `send` (false: the peer is gone). A file body goes by
    /// `sendfile` to `sendfileTo` when given, else through `send` in 64 KiB pieces (FastCGI
    /// wraps each piece in records).
    public func write(sendfileTo fd: Int32?, _ send: (ArraySlice<UInt8>) -> Bool) {
        guard send(serialized()[...]), let file, !file.headOnly, file.length > 0 else { return }
        let input = open(file.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return }
        defer { close(input) }
        var offset = off_t(file.offset), left = file.length
        while let fd, left > 0 {
            let n = sendfile(fd, input, &offset, Int(min(left, 1 << 20)))
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EINVAL || errno == ENOSYS) { break }
            guard n > 0 else { return }
            left -= Int64(n)
        }
        // Only when sendfile could not (FastCGI, or an output it refuses): 64 KiB zeroed is a
        // dozen page faults a CGI need not pay.
        guard left > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while left > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, Int(min(left, Int64($0.count))), offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0, send(buffer[..<n]) else { return }
            offset += off_t(n)
            left -= Int64(n)
        }
    }

    static func writeAll(_ slice: ArraySlice<UInt8>, to fd: Int32) -> Bool {
        var bytes = slice
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            bytes = bytes.dropFirst(n)
        }
        return true
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 503: return "Service Unavailable"
        default: return "Internal Server Error"
        }
    }
}
