import Testing
@testable import LatchkeyCore

@Suite struct TemplateTests {
    func render(_ source: String, _ context: TemplateValue, partials: [String: String] = [:]) throws -> String {
        try Template(source: source, name: "t.html").render(context) { name in
            try partials[name].map { try Template(source: $0, name: name + ".html") }
        }
    }

    @Test(arguments: [
        ("Hi {{name}}!", "Hi &lt;b&gt;Ada&lt;/b&gt;!"),
        ("Hi {{{name}}}!", "Hi <b>Ada</b>!"),
        ("Hi {{& name}}!", "Hi <b>Ada</b>!"),
        ("{{#flag}}yes{{/flag}}{{^flag}}no{{/flag}}", "yes"),
        ("{{#missing}}yes{{/missing}}{{^missing}}no{{/missing}}", "no"),
        ("{{#items}}[{{.}}]{{/items}}", "[a][b]"),
        ("{{#people}}{{first}} {{/people}}", "Ada Grace "),
        ("{{t.login.title}}", "Log in"),
        ("{{#t}}{{login.title}}{{/t}}", "Log in"),
        ("a{{! a comment }}b", "ab"),
        ("{{#empty}}x{{/empty}}", ""),
    ] as [(String, String)])
    func rendersMustacheTags(source: String, expected: String) throws {
        let context: TemplateValue = [
            "name": "<b>Ada</b>", "flag": true, "items": ["a", "b"], "empty": "",
            "people": [["first": "Ada"], ["first": "Grace"]],
            "t": ["login": ["title": "Log in"]],
        ]
        #expect(try render(source, context) == expected)
    }

    @Test func standaloneTagsLeaveNoBlankLines() throws {
        let source = "start\n{{#flag}}\n  inside\n{{/flag}}\nend\n"
        #expect(try render(source, ["flag": true]) == "start\n  inside\nend\n")
        #expect(try render(source, ["flag": false]) == "start\nend\n")
    }

    @Test func partialsSeeTheCallersContext() throws {
        let out = try render("<h1>{{> title}}</h1>", ["site": "Acme"], partials: ["title": "{{site}}"])
        #expect(out == "<h1>Acme</h1>")
    }

    @Test func innerContextShadowsOuterButFallsBackToIt() throws {
        let out = try render("{{#inner}}{{a}}{{b}}{{/inner}}", ["a": "outer-a", "b": "outer-b", "inner": ["a": "inner-a"]])
        #expect(out == "inner-aouter-b")
    }

    @Test(arguments: [
        ("line1\n{{#open}}\nline3", 2, "never closed"),
        ("line1\nline2 {{/nothing}}", 2, "closes nothing"),
        ("{{#a}}\n{{/b}}", 2, "closes {{#a}}"),
        ("ok\nok\n{{unknown}}", 3, "unknown variable 'unknown'"),
        ("x\n{{ name", 2, "not closed"),
        ("{{> nopartial}}", 1, "unknown partial 'nopartial'"),
        ("{{bad name}}", 1, "bad name"),
    ] as [(String, Int, String)])
    func errorsNameTheFileAndLine(source: String, line: Int, reason: String) throws {
        do {
            _ = try render(source, ["name": "x"])
            Issue.record("expected an error for \(source)")
        } catch let CoreError.template(file, errorLine, message) {
            #expect(file == "t.html")
            #expect(errorLine == line)
            #expect(message.contains(reason), "\(message)")
        }
    }

    @Test func aPartialIncludingItselfFailsInsteadOfLooping() throws {
        #expect(throws: CoreError.self) { try render("{{> loop}}", [:], partials: ["loop": "{{> loop}}"]) }
    }
}

/// The parser's byte-level line cutting agrees with cutting the String's characters.
@Suite struct TemplateLineTests {
    @Test(arguments: ["", "a", "a\nb", "a\n", "\n\n", "a\r\nb\nc", "é\nü\r\n\n{{x}}\n", "\r\n", "a\rb\nc"])
    func linesAreCutAsCharactersAre(_ text: String) {
        #expect(TemplateParser.lines(text) == text.split(separator: "\n", omittingEmptySubsequences: false))
    }
}
