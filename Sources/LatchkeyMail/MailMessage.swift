import Glibc
import CSodium
import LatchkeyCore

/// An RFC 5322 message with a `multipart/alternative` body (text, then HTML).
///
/// Header values that came from people (names, subjects) are RFC 2047-encoded when they are not
/// plain ASCII, and any control character is refused before it gets here, so no input can
/// start a header of its own.
public struct MailMessage: Sendable {
    /// The From header: the site's sender address.
    public var from: String
    /// The recipient's bare address.
    public var to: String
    /// The recipient's name, shown in the To header; may be empty.
    public var toName: String
    /// The Reply-To address; empty for none.
    public var replyTo: String
    /// The Subject header, already localized.
    public var subject: String
    /// The plain-text part.
    public var text: String
    /// The HTML part.
    public var html: String
    /// The language code, sent as Content-Language.
    public var language: String
    /// The Message-ID header, kept in the email history.
    public var messageID: String
    /// When it was written, in Unix seconds; the Date header.
    public var date: Int64

    /// A message with a fresh Message-ID in the sender's domain.
    public init(from: String, to: String, toName: String, replyTo: String = "", subject: String,
                text: String, html: String, language: String, date: Int64) {
        self.from = from
        self.to = to
        self.toName = toName
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.html = html
        self.language = language
        self.date = date
        let domain = MailMessage.address(in: from).split(separator: "@").last.map(String.init) ?? "localhost"
        messageID = "<\(date).\(Sodium.base64URL(Sodium.randomBytes(12)))@\(domain)>"
    }

    /// The bytes to hand to a transport, lines ending in CRLF.
    public func rendered() throws -> [UInt8] {
        for (name, value) in [("From", from), ("To", to), ("Reply-To", replyTo), ("Subject", subject), ("name", toName)]
        where value.hasControlCharacters {
            throw MailError("refusing a mail header with a control character in \(name)")
        }
        let boundary = "lk-" + Sodium.base64URL(Sodium.randomBytes(18))
        var headers = [
            "Date: " + MailMessage.rfc5322Date(date),
            "From: " + MailMessage.encodeAddress(from),
            "To: " + (toName.isEmpty ? "<\(to)>" : MailMessage.encodePhrase(toName) + " <\(to)>"),
            "Subject: " + MailMessage.encodeWord(subject),
            "Message-ID: " + messageID,
            "MIME-Version: 1.0",
            "Content-Language: " + language,
            "Auto-Submitted: auto-generated",
            "X-Auto-Response-Suppress: All",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        if !replyTo.isEmpty { headers.insert("Reply-To: " + MailMessage.encodeAddress(replyTo), at: 3) }
        var body = headers.joined(separator: "\r\n") + "\r\n\r\n"
        // 8bit keeps links whole for people reading the raw message; quoted-printable only when
        // a line would break RFC 5322's 998-byte limit.
        let lines = text.replacingAll("\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        let plain = lines.allSatisfy { $0.utf8.count <= 998 }
        body += "--\(boundary)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: \(plain ? "8bit" : "quoted-printable")\r\n\r\n"
        body += (plain ? lines.joined(separator: "\r\n") : MailMessage.quotedPrintable(text)) + "\r\n"
        body += "--\(boundary)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        body += MailMessage.base64Lines(Array(html.utf8)) + "\r\n"
        body += "--\(boundary)--\r\n"
        return Array(body.utf8)
    }

    /// `Mon, 23 Nov 2026 11:22:06 +0000`.
    static func rfc5322Date(_ seconds: Int64) -> String {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }

    /// The bare address of `Name <addr>` or `addr`.
    public static func address(in mailbox: String) -> String {
        if let open = mailbox.lastIndex(of: "<"), let close = mailbox.lastIndex(of: ">"), open < close {
            return String(mailbox[mailbox.index(after: open)..<close]).trimmed
        }
        return mailbox.trimmed
    }

    /// `Name <addr>` with the name encoded as needed.
    static func encodeAddress(_ mailbox: String) -> String {
        let address = address(in: mailbox)
        guard let open = mailbox.lastIndex(of: "<") else { return address }
        let name = String(mailbox[..<open]).trimmed.trimmingQuotes
        return name.isEmpty ? "<\(address)>" : encodePhrase(name) + " <\(address)>"
    }

    /// A display name: a quoted string when ASCII, an encoded word otherwise.
    static func encodePhrase(_ name: String) -> String {
        if name.unicodeScalars.allSatisfy({ $0.isASCII }) {
            return "\"" + name.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        return encodeWord(name)
    }

    /// RFC 2047 `=?UTF-8?B?…?=` when the text is not plain ASCII; split so no word exceeds 75 characters.
    static func encodeWord(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 }) && text.utf8.count < 900 { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 { words.append(chunk.base64Word); chunk = [] }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append(chunk.base64Word) }
        return words.joined(separator: "\r\n ")
    }

    /// Quoted-printable (RFC 2045) with CRLF line ends and soft breaks before 76 columns.
    static func quotedPrintable(_ text: String) -> String {
        var out = ""
        let lines = text.replacingAll("\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            var column = 0
            let bytes = Array(line.utf8)
            for (position, byte) in bytes.enumerated() {
                let isLast = position == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != 61) || ((byte == 32 || byte == 9) && !isLast)
                let piece = literal ? String(UnicodeScalar(byte)) : "=" + String(byte, radix: 16, uppercase: true).leftPad2
                if column + piece.count > 75 { out += "=\r\n"; column = 0 }
                out += piece
                column += piece.count
            }
            if index < lines.count - 1 { out += "\r\n" }
        }
        return out
    }

    /// Base64 in 76-column lines.
    static func base64Lines(_ bytes: [UInt8]) -> String {
        // On bytes: base64 is ASCII, and splitting a long String by Character is slow.
        let encoded = Array(bytes.base64.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / 38)
        for start in stride(from: 0, to: encoded.count, by: 76) {
            if start > 0 { out += [13, 10] }
            out += encoded[start..<min(start + 76, encoded.count)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Standard, padded base64.
    var base64: String {
        let variant = Int32(sodium_base64_VARIANT_ORIGINAL)
        var out = [CChar](repeating: 0, count: sodium_base64_encoded_len(count, variant))
        _ = sodium_bin2base64(&out, out.count, self, count, variant)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var base64Word: String { "=?UTF-8?B?" + base64 + "?=" }
}

extension String {
    var leftPad2: String { count == 1 ? "0" + self : self }
    var trimmingQuotes: String {
        hasPrefix("\"") && hasSuffix("\"") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}
