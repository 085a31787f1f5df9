/// What a template sees: strings, booleans, lists and nested dictionaries.
public indirect enum TemplateValue: Equatable, Sendable {
    case string(String)
    case bool(Bool)
    case list([TemplateValue])
    case dict([String: TemplateValue])

    /// Mustache truthiness: false, empty strings and empty lists hide a section.
    var isTruthy: Bool {
        switch self {
        case let .string(s): return !s.isEmpty
        case let .bool(b): return b
        case let .list(l): return !l.isEmpty
        case .dict: return true
        }
    }

    /// The text a variable tag prints; nil for lists and dictionaries, which have none.
    var text: String? {
        switch self {
        case let .string(s): return s
        case let .bool(b): return b ? "true" : ""
        case .list, .dict: return nil
        }
    }

    /// The member `key` of a dictionary.
    public subscript(key: String) -> TemplateValue? {
        if case let .dict(d) = self { return d[key] }
        return nil
    }

    /// A dictionary value with `other`'s keys laid over this one's.
    public func merging(_ other: [String: TemplateValue]) -> TemplateValue {
        guard case var .dict(d) = self else { return .dict(other) }
        d.merge(other) { _, new in new }
        return .dict(d)
    }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    /// A string literal is a `.string`.
    public init(stringLiteral value: String) { self = .string(value) }
    /// A boolean literal is a `.bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An array literal is a `.list`.
    public init(arrayLiteral elements: TemplateValue...) { self = .list(elements) }
    /// A dictionary literal is a `.dict`; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .dict(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
}
