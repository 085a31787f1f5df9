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

    @Test func includesComparesBytes() {
        #expect("a..b".includes(".."))
        #expect(!"a.b.c".includes(".."))
        #expect("x://y".includes("://"))
        #expect("café".includes("é"))
        #expect(!"cafe".includes("é"))
        #expect("abc".includes(""))
        #expect(!"ab".includes("abc"))
        #expect("abc"[...].includes("c"))
    }

    @Test(arguments: [
        ("/a/b/../c/./d//e/", "/a/c/d/e"), ("a/b", "/a/b"), ("/../..", "/"), ("/", "/"), ("", "/"),
        ("/srv/site/./var/latchkey.sqlite3", "/srv/site/var/latchkey.sqlite3"), ("/a/b/..", "/a"),
    ])
    func pathsNormalize(input: String, expected: String) {
        #expect(Path.normalize(input) == expected)
    }

    @Test func pathArithmetic() {
        #expect(Path.basename("/usr/lib/cgi-bin/reset") == "reset")
        #expect(Path.basename("reset") == "reset")
        #expect(Path.basename("/a/b/") == "b")
        #expect(Path.basename("/") == "")
        #expect(Path.parent(of: "/srv/site/var/db") == "/srv/site/var")
        #expect(Path.parent(of: "/db") == "/")
        #expect(Path.join("/srv/site", "var/../keys/k") == "/srv/site/keys/k")
        #expect(Path.join("/srv/site", "/abs/x") == "/abs/x")
        #expect(Path.isInside("/srv/site/members/a.html", "/srv/site/members"))
        #expect(!Path.isInside("/srv/site/members-old/a.html", "/srv/site/members"))
        #expect(Path.absolute("/x/./y") == "/x/y")
        #expect(Path.absolute("rel").hasSuffix("/rel") && Path.absolute("rel").hasPrefix("/"))
    }
}
