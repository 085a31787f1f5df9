/// A parsed Mustache template: `{{name}}` escaped, `{{{name}}}` / `{{& name}}` raw,
/// `{{#s}}…{{/s}}` sections, `{{^s}}…{{/s}}` inverted sections, `{{> partial}}`, `{{! comment}}`.
///
/// Rendering is strict about variables: a `{{name}}` that resolves to nothing is an error
/// naming the file and line, so a typo fails `latchkey build` instead of shipping a blank.
/// Sections on absent names are simply false, as in Mustache.
public struct Template: Sendable {
    /// The file name used in error messages.
    public let name: String
    let nodes: [Node]

    /// Finds a partial by name; nil when there is none.
    public typealias PartialLoader = (String) throws -> Template?

    /// Nesting bound for partials, so a partial that includes itself fails instead of looping.
    static let maxPartialDepth = 16

    enum Node: Sendable {
        case text(String)
        case variable(path: [String], escaped: Bool, line: Int)
        case section(path: [String], inverted: Bool, body: [Node], line: Int)
        case partial(name: String, line: Int)
    }

    /// Parses `source`; throws `CoreError.template` naming `name` and the line.
    public init(source: String, name: String) throws {
        self.name = name
        self.nodes = try TemplateParser(source: source, file: name).parse()
    }

    /// Renders with `context`; partials come from `partials`.
    public func render(_ context: TemplateValue, partials: PartialLoader = { _ in nil }) throws -> String {
        var out = ""
        try render(nodes, stack: [context], partials: partials, depth: 0, into: &out)
        return out
    }

    private func render(_ nodes: [Node], stack: [TemplateValue], partials: PartialLoader,
                        depth: Int, into out: inout String) throws {
        for node in nodes {
            switch node {
            case let .text(text):
                out += text
            case let .variable(path, escaped, line):
                guard let value = Template.lookup(path, in: stack), let text = value.text else {
                    throw CoreError.template(file: name, line: line,
                                             reason: "unknown variable '\(path.joined(separator: "."))'")
                }
                out += escaped ? Escape.html(text) : text
            case let .section(path, inverted, body, _):
                let value = Template.lookup(path, in: stack)
                let truthy = value?.isTruthy ?? false
                if inverted {
                    if !truthy { try render(body, stack: stack, partials: partials, depth: depth, into: &out) }
                } else if truthy, let value {
                    if case let .list(items) = value {
                        for item in items {
                            try render(body, stack: stack + [item], partials: partials, depth: depth, into: &out)
                        }
                    } else {
                        try render(body, stack: stack + [value], partials: partials, depth: depth, into: &out)
                    }
                }
            case let .partial(partialName, line):
                guard depth < Template.maxPartialDepth else {
                    throw CoreError.template(file: name, line: line, reason: "partials nested too deeply at '\(partialName)'")
                }
                guard let partial = try partials(partialName) else {
                    throw CoreError.template(file: name, line: line, reason: "unknown partial '\(partialName)'")
                }
                try partial.render(partial.nodes, stack: stack, partials: partials, depth: depth + 1, into: &out)
            }
        }
    }

    /// Mustache name resolution: `.` is the current item; the first segment is searched
    /// from the innermost context outwards, the rest walk down from there.
    static func lookup(_ path: [String], in stack: [TemplateValue]) -> TemplateValue? {
        if path == ["."] { return stack.last }
        for context in stack.reversed() {
            guard var value = context[path[0]] else { continue }
            for key in path.dropFirst() {
                guard let next = value[key] else { return nil }
                value = next
            }
            return value
        }
        return nil
    }
}
