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
        for (offset, raw) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
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
        var rest = Substring(line)
        while let open = rest.firstRange(of: "{{") {
            if open.lowerBound > rest.startIndex { tokens.append(.text(String(rest[..<open.lowerBound]))) }
            var after = rest[open.upperBound...]
            let triple = after.hasPrefix("{")
            if triple { after = after.dropFirst() }
            guard let close = after.firstRange(of: triple ? "}}}" : "}}") else {
                throw CoreError.template(file: file, line: number, reason: "tag opened with {{ but not closed on the same line")
            }
            var content = String(after[..<close.lowerBound]).trimmed
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
            rest = after[close.upperBound...]
        }
        if !rest.isEmpty { tokens.append(.text(String(rest))) }
        return tokens
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
