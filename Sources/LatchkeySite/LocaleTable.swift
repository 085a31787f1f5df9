import LatchkeyCore

/// One language's strings, `locales/CODE.json`: nested objects whose leaves are strings.
public struct LocaleTable: Sendable {
    /// The language code, e.g. `fr`.
    public let code: String
    /// The file it came from.
    public let file: String
    /// The strings, for templates as `t`.
    public let strings: TemplateValue

    /// Loads and checks `folder/CODE.json`.
    public static func load(code: String, folder: String) throws -> LocaleTable {
        let file = Path.join(folder, code + ".json")
        let json = try JSONValue.load(path: file)
        guard case .object = json else { throw CoreError.locale(file: file, key: "(top level)", reason: "must be an object") }
        if let bad = leaves(json).first(where: { !$0.isString }) {
            throw CoreError.locale(file: file, key: bad.key, reason: "must be a string")
        }
        return LocaleTable(code: code, file: file, strings: json.templateValue)
    }

    /// Every dotted key with a string (or other scalar) at its end.
    public var keys: Set<String> { Set(LocaleTable.leaves(strings).map(\.key)) }

    /// Looks up a dotted key, e.g. `messages.invalid_login`.
    public func string(_ dotted: String) -> String? {
        var value: TemplateValue? = strings
        for part in dotted.split(separator: ".") { value = value?[String(part)] }
        if case let .string(s)? = value { return s }
        return nil
    }

    /// Fails with the first key `reference` has and this table lacks.
    public func requireSameKeys(as reference: LocaleTable) throws {
        if let missing = reference.keys.subtracting(keys).sorted().first {
            throw CoreError.locale(file: file, key: missing, reason: "missing (present in \(Path.basename(reference.file)))")
        }
    }

    private struct Leaf { let key: String; let isString: Bool }

    private static func leaves(_ json: JSONValue, prefix: String = "") -> [Leaf] {
        switch json {
        case let .object(members):
            return members.sorted { $0.key < $1.key }.flatMap { leaves($0.value, prefix: prefix.isEmpty ? $0.key : prefix + "." + $0.key) }
        case .string: return [Leaf(key: prefix, isString: true)]
        default: return [Leaf(key: prefix, isString: false)]
        }
    }

    private static func leaves(_ value: TemplateValue, prefix: String = "") -> [Leaf] {
        switch value {
        case let .dict(members):
            return members.flatMap { leaves($0.value, prefix: prefix.isEmpty ? $0.key : prefix + "." + $0.key) }
        default: return [Leaf(key: prefix, isString: true)]
        }
    }
}
