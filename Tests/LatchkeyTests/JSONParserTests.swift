import Testing
@testable import LatchkeyCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" { "a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d"}, "e": "" } "#)
        #expect(value == .object(["a": .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]),
                                  "b": .object(["c": .string("d")]), "e": .string("")]))
    }

    @Test func objectsKeepTheirOrderAndCompareInAnyOrder() throws {
        guard case let .object(members) = try parse(#"{"b": 1, "a": 2, "c": 3}"#) else { Issue.record("not an object"); return }
        #expect(members.keys == ["b", "a", "c"])
        #expect(members["a"] == .number(2) && members["d"] == nil)
        #expect(try parse(#"{"a": 2, "c": 3, "b": 1}"#) == .object(members))
        #expect(try parse(#"{"a": 2, "c": 3}"#) != .object(members))
    }

    /// Past `smallObject` members, repeats are looked for in a set: both ways must refuse one.
    @Test(arguments: [3, JSONParser.smallObject - 1, JSONParser.smallObject, JSONParser.smallObject + 5])
    func aRepeatedKeyIsRefusedInObjectsOfAnySize(count: Int) {
        let members = (0..<count).map { "\"k\($0)\": \($0)" } + ["\"k\(count / 2)\": 0"]
        do {
            _ = try parse("{" + members.joined(separator: ", ") + "}")
            Issue.record("a repeated key in \(count + 1) members was accepted")
        } catch {
            #expect("\(error)".contains("appears twice"), "\(error)")
        }
        #expect((try? parse("{" + members.dropLast().joined(separator: ", ") + "}")) != nil)
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
