import Testing
@testable import LatchkeyCore

@Suite struct EscapeTests {
    @Test(arguments: [
        ("<script>", "&lt;script&gt;"),
        ("a & b", "a &amp; b"),
        ("\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"),
        ("café 日本 🔑", "café 日本 🔑"),
        ("", ""),
    ])
    func htmlTextEscapesTheFiveSpecialCharactersAndKeepsUnicode(input: String, expected: String) {
        #expect(Escape.html(input) == expected)
    }

    @Test func attributeValuesCannotBreakOutOfQuotes() {
        #expect(Escape.attribute("x\" onmouseover=\"alert(1)") == "x&quot; onmouseover=&quot;alert(1)")
        #expect(Escape.attribute("x' y") == "x&#39; y")
    }

    @Test(arguments: [
        ("/members/page?a=1&b=2", "%2Fmembers%2Fpage%3Fa%3D1%26b%3D2"),
        ("<>\"'", "%3C%3E%22%27"),
        ("café", "caf%C3%A9"),
        ("A-z_0.9~", "A-z_0.9~"),
        ("a b", "a%20b"),
    ])
    func urlComponentsPercentEncodeEverythingButUnreserved(input: String, expected: String) {
        #expect(Escape.urlComponent(input) == expected)
    }
}
