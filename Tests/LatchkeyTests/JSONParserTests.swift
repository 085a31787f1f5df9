import Testing
@testable import LatchkeyCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" { "a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d"}, "e": "" } "#)
        #expect(value == .object(["a": .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]),
                                  "b": .object(["c": .string("d")]), "e": .string("")]))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\udd11""#) == .string("a\"b\\c/d\n\té🔑"))
        #expect(try parse("\"café 日本\"") == .string("café 日本"))
    }

    @Test(arguments: [
        ("{\n  \"a\": 1,\n}", "line 3, column 1"),
        ("{\"a\" 1}", "expected ':'"),
        ("[1, 2", "unexpected end of file"),
        ("{\"a\": 1, \"a\": 2}", "appears twice"),
        ("\"tab\there\"", "control character"),
        ("{\"a\": tru}", "unexpected character"),
        ("[1] x", "after the JSON value"),
        ("\"\\x\"", "invalid escape"),
        ("01.", "unexpected character"),
        (String(repeating: "[", count: 100), "nested too deeply"),
    ] as [(String, String)])
    func errorsSayWhereAndWhat(text: String, expected: String) {
        do {
            _ = try parse(text)
            Issue.record("expected an error for \(text)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }
}
