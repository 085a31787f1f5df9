/// Turns template text into nodes, line by line, so errors carry a line number and a tag
/// standing alone on its line (section, close, comment, partial) leaves no blank line behind.
struct TemplateParser {
    let source: String
    let file: String

    private enum Token {
        case text(String)
        case tag(sigil: Character?, content: String, line: Int)
    }

    func parse() throws -> [Template.Node] {
        var tokens: [Token] = []
        let lines = logicalLines()
        for (offset, (line, number)) in lines.enumerated() {
            let lineTokens = try tokenize(line, line: number)
            let isLast = offset == lines.count - 1
            if isStandalone(lineTokens) {
                tokens += lineTokens.filter { if case .tag = $0 { return true } else { return false } }
            } else {
                tokens += lineTokens
                if !isLast { tokens.append(.text("\n")) }
            }
        }
        var index = 0
        return try build(tokens, index: &index, closing: nil)
    }

    /// Source lines with their numbers; a comment tag that spans lines is joined into one.
    private func logicalLines() -> [(String, Int)] {
        var result: [(String, Int)] = []
        var pending: (String, Int)?
        for (offset, raw) in TemplateParser.lines(source).enumerated() {
            let line = pending.map { $0.0 + "\n" + raw } ?? String(raw)
            let number = pending?.1 ?? offset + 1
            if TemplateParser.endsInsideComment(line) {
                pending = (line, number)
                continue
            }
            pending = nil
            result.append((line, number))
        }
        if let pending { result.append(pending) }
        return result
    }

    /// `text` cut at each line feed, as `split(separator: "\n")` cuts a String's characters
    /// (a CR LF pair is one character, so it is not a cut), but by bytes, many times faster.
    static func lines(_ text: String) -> [Substring] {
        var lines: [Substring] = []
        let bytes = text.utf8
        var start = bytes.startIndex, index = bytes.startIndex, previous: UInt8 = 0
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == 0x0A && previous != 0x0D {
                lines.append(text[start..<index])
                start = bytes.index(after: index)
            }
            previous = byte
            index = bytes.index(after: index)
        }
        lines.append(text[start...])
        return lines
    }

    /// True when the line's last `{{!` has no `}}` after it: the comment goes on to the next
    /// line. A byte scan: both marks are ASCII.
    static func endsInsideComment(_ line: String) -> Bool {
        let bytes = Array(line.utf8)
        var lastOpen: Int?
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == UInt8(ascii: "{"), bytes[index + 1] == UInt8(ascii: "{"), bytes[index + 2] == UInt8(ascii: "!") { lastOpen = index + 3 }
            index += 1
        }
        guard var index = lastOpen else { return false }
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "}"), bytes[index + 1] == UInt8(ascii: "}") { return false }
            index += 1
        }
        return true
    }

    private func tokenize(_ line: String, line number: Int) throws -> [Token] {
        var tokens: [Token] = []
        // Searched as bytes: the braces are ASCII, so every cut falls between characters, and
        // this runs for every line of every page a CGI renders.
        let bytes = line.utf8
        var rest = bytes.startIndex
        while let open = TemplateParser.find(UInt8(ascii: "{"), times: 2, in: bytes, from: rest) {
            if open > rest { tokens.append(.text(String(line[rest..<open]))) }
            var after = bytes.index(open, offsetBy: 2)
            let triple = after < bytes.endIndex && bytes[after] == UInt8(ascii: "{")
            if triple { after = bytes.index(after: after) }
            guard let close = TemplateParser.find(UInt8(ascii: "}"), times: triple ? 3 : 2, in: bytes, from: after) else {
                throw CoreError.template(file: file, line: number, reason: "tag opened with {{ but not closed on the same line")
            }
            var content = String(line[after..<close]).trimmed
            var sigil: Character? = triple ? "&" : nil
            if !triple, let first = content.first, "#^/>!&".contains(first) {
                sigil = first
                content = String(content.dropFirst()).trimmed
            }
            if sigil != "!" {
                guard !content.isEmpty else {
                    throw CoreError.template(file: file, line: number, reason: "empty tag")
                }
                guard content.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                    throw CoreError.template(file: file, line: number, reason: "bad name '\(content)' in tag")
                }
            }
            tokens.append(.tag(sigil: sigil, content: content, line: number))
            rest = bytes.index(close, offsetBy: triple ? 3 : 2)
        }
        if rest < bytes.endIndex { tokens.append(.text(String(line[rest...]))) }
        return tokens
    }

    /// Where `byte` next comes `run` times in a row, from `start`.
    private static func find(_ byte: UInt8, times run: Int, in bytes: String.UTF8View, from start: String.Index) -> String.Index? {
        var index = start, seen = 0
        while index < bytes.endIndex {
            if bytes[index] == byte {
                seen += 1
                if seen == run { return bytes.index(index, offsetBy: 1 - run) }
            } else {
                seen = 0
            }
            index = bytes.index(after: index)
        }
        return nil
    }

    /// One section, close, comment or partial tag and nothing but spaces around it.
    private func isStandalone(_ tokens: [Token]) -> Bool {
        var tags = 0
        for token in tokens {
            switch token {
            case let .text(text): if !text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { return false }
            case let .tag(sigil, _, _):
                guard let sigil, "#^/>!".contains(sigil) else { return false }
                tags += 1
            }
        }
        return tags == 1
    }

    private func build(_ tokens: [Token], index: inout Int, closing: (name: String, line: Int)?) throws -> [Template.Node] {
        var nodes: [Template.Node] = []
        while index < tokens.count {
            let token = tokens[index]
            index += 1
            switch token {
            case let .text(text):
                if !text.isEmpty { nodes.append(.text(text)) }
            case let .tag(sigil, content, line):
                let path = content == "." ? ["."] : content.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                if sigil != "!", sigil != ">", path.contains(where: \.isEmpty) {
                    throw CoreError.template(file: file, line: line, reason: "bad name '\(content)' in tag")
                }
                switch sigil {
                case nil: nodes.append(.variable(path: path, escaped: true, line: line))
                case "&": nodes.append(.variable(path: path, escaped: false, line: line))
                case "!": break
                case ">": nodes.append(.partial(name: content, line: line))
                case "#", "^":
                    let body = try build(tokens, index: &index, closing: (content, line))
                    nodes.append(.section(path: path, inverted: sigil == "^", body: body, line: line))
                case "/":
                    guard let closing else {
                        throw CoreError.template(file: file, line: line, reason: "{{/\(content)}} closes nothing")
                    }
                    guard closing.name == content else {
                        throw CoreError.template(file: file, line: line,
                                                 reason: "{{/\(content)}} closes {{#\(closing.name)}} opened on line \(closing.line)")
                    }
                    return nodes
                default: break
                }
            }
        }
        if let closing {
            throw CoreError.template(file: file, line: closing.line, reason: "section {{#\(closing.name)}} is never closed")
        }
        return nodes
    }
}
