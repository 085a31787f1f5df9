import LatchkeyCore

/// One language's strings, `locales/CODE.json`: nested objects whose leaves are strings.
public struct LocaleTable: Sendable {
    /// The language code, e.g. `fr`.
    public let code: String
    /// The file it came from.
    public let file: String
    /// The strings, for templates as `t`.
    public let strings: TemplateValue

    /// Loads `folder/CODE.json`; with `check`, fails on a leaf that is not a string (a page
    /// rendered per request skips that: `latchkey build` has checked the same file).
    public static func load(code: String, folder: String, check: Bool = true) throws -> LocaleTable {
        let file = Path.join(folder, code + ".json")
        let json = try JSONValue.load(path: file)
        guard case .object = json else { throw CoreError.locale(file: file, key: "(top level)", reason: "must be an object") }
        if check, let bad = leaves(json).first(where: { !$0.isString }) {
            throw CoreError.locale(file: file, key: bad.key, reason: "must be a string")
        }
        return LocaleTable(code: code, file: file, strings: json.templateValue)
    }

    /// The top-level `language_name` of `folder/CODE.json`, found without parsing the rest: a
    /// page rendered per request names every language but reads only its own table whole.
    public static func languageName(code: String, folder: String) -> String? {
        guard let bytes = FileBytes.read(Path.join(folder, code + ".json"), limit: 1 << 20) else { return nil }
        let key = Array("\"language_name\"".utf8)
        guard let at = (0...max(0, bytes.count - key.count)).first(where: { bytes[$0..<min($0 + key.count, bytes.count)].elementsEqual(key) }) else { return nil }
        var index = at + key.count
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x3A || bytes[index] == 0x0A || bytes[index] == 0x09 { index += 1 }
        guard index < bytes.count, bytes[index] == 0x22 else { return nil }
        var end = index + 1
        while end < bytes.count, bytes[end] != 0x22 { end += bytes[end] == 0x5C ? 2 : 1 }
        guard end < bytes.count else { return nil }
        return (try? JSONValue.parse(Array(bytes[index...end])))?.string
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
