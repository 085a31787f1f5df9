import Testing
@testable import LatchkeyAccounts
@testable import LatchkeyCore

/// The blocklist (searched in place, by bisection) and the context words.
@Suite struct PasswordPolicyTests {
    static let listFile = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/")) + "/data/common-passwords.txt"

    @Test func everyEntryOfTheListIsFoundAndNeighboursAreNot() throws {
        let data = try #require(FileBytes.read("/" + Self.listFile))
        let entries = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(entries.count == CommonPasswords.count && entries.count >= 10_000)
        for entry in entries { #expect(PasswordBlocklist.builtin(Array(entry.utf8)), "\(entry) not found") }
        for entry in entries.prefix(500) {
            #expect(!PasswordBlocklist.builtin(Array((entry + "\u{1}").utf8)))
            #expect(!PasswordBlocklist.builtin(Array(("\u{1}" + entry).utf8)))
        }
        #expect(!PasswordBlocklist.builtin([]) && !PasswordBlocklist.builtin(Array("correct horse battery staple".utf8)))
    }

    @Test(arguments: [("password123", "too_common"), ("  PassWord123 ", "too_common"), ("qwertyuiop", "too_common"),
                      ("AcmeAcademy2024!", "too_common"), ("acme academy", "too_common"), ("Lovelace99", "too_common"),
                      ("ada.lovelace", "too_common"), ("lovelace", "too_common"),
                      ("correct horse battery", nil), ("lovelace in paris", nil), ("acmeacademyrocks", nil)])
    func commonAndContextPasswordsAreRefused(password: String, expected: String?) throws {
        var config = SiteConfig(file: "/nonexistent/latchkey.json")
        config.siteName = "Acme Academy"
        let problem = try PasswordPolicy.problem(password: password, confirmation: password, email: "ada.lovelace@example.com",
                                                 name: "Ada Lovelace", config: config)
        #expect(problem == expected)
        config.password.blocklist = "off"
        #expect(try PasswordPolicy.problem(password: password, confirmation: password, email: "ada.lovelace@example.com",
                                           name: "Ada Lovelace", config: config) == nil)
    }
}
