import Testing
@testable import LatchkeyMail

@Suite struct MailMessageTests {
    func message(subject: String = "Reset your password", name: String = "Ada", text: String = "Hi\nhttps://x.example/cgi-bin/reset?token=abc") -> MailMessage {
        MailMessage(from: "Acme Academy <no-reply@acme.example>", to: "ada@example.com", toName: name, subject: subject,
                    text: text, html: "<p>Hi</p>", language: "en", date: 1_795_434_146)
    }

    @Test func hasTheRequiredHeadersAndBothParts() throws {
        let raw = String(decoding: try message().rendered(), as: UTF8.self)
        let head = raw.components(separatedBy: "\r\n\r\n")[0]
        for header in ["Date: Mon, 23 Nov 2026", "From: \"Acme Academy\" <no-reply@acme.example>", "To: \"Ada\" <ada@example.com>",
                       "Subject: Reset your password", "Message-ID: <", "@acme.example>", "MIME-Version: 1.0",
                       "Auto-Submitted: auto-generated", "Content-Type: multipart/alternative; boundary="] {
            #expect(head.contains(header), "\(header)")
        }
        #expect(raw.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(raw.contains("Content-Type: text/html; charset=utf-8"))
        #expect(raw.contains("https://x.example/cgi-bin/reset?token=abc"), "the link stays whole in the text part")
    }

    @Test func nonASCIIHeadersAreEncodedWords() throws {
        let raw = String(decoding: try message(subject: "Réinitialisez votre mot de passe", name: "Zoë").rendered(), as: UTF8.self)
        #expect(raw.contains("Subject: =?UTF-8?B?"))
        #expect(raw.contains("To: =?UTF-8?B?"))
        #expect(!raw.contains("Zoë"))
    }

    @Test(arguments: ["Hello\r\nBcc: victim@example.com", "x\nX-Injected: 1", "nul\u{0}"])
    func controlCharactersInHeadersAreRefused(value: String) {
        #expect(throws: MailError.self) { try message(subject: value).rendered() }
        #expect(throws: MailError.self) { try message(name: value).rendered() }
    }

    @Test func quotedPrintableKeepsLinesShortAndEscapesEquals() {
        let encoded = MailMessage.quotedPrintable(String(repeating: "a=b ", count: 40) + "\nend ")
        #expect(encoded.split(separator: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(encoded.contains("=3D"))
        #expect(encoded.hasSuffix("end=20"))
    }
}
