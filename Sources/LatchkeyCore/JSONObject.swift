/// The members of a JSON object, in document order.
///
/// A list rather than a dictionary: every CGI parses the config on every request, and its
/// objects hold a handful to a few dozen keys, which a linear look-up finds for less than
/// hashing each key (and a dictionary's storage metadata, which the runtime builds at start).
/// The parser refuses a repeated key, so a key names at most one member.
public struct JSONObject: Equatable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    /// One member.
    public struct Member: Equatable, Sendable {
        /// The member's name.
        public let key: String
        /// Its value.
        public let value: JSONValue
    }

    /// The members in the order the document gives them.
    public private(set) var members: [Member]

    /// An object of `members`, whose keys the caller keeps distinct.
    init(members: [Member]) { self.members = members }

    /// An object from a literal; a repeated key keeps its last value, as a dictionary would.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = []
        for (key, value) in elements { self[key] = value }
    }

    /// The value of member `key`, or nil; setting nil removes the member.
    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case let (index?, value?): members[index] = Member(key: key, value: value)
            case let (index?, nil): members.remove(at: index)
            case let (nil, value?): members.append(Member(key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    /// The member names, in document order.
    public var keys: [String] { members.map(\.key) }

    /// How many members there are.
    public var count: Int { members.count }

    /// Whether there are none.
    public var isEmpty: Bool { members.isEmpty }

    /// The members in document order.
    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

    /// The same members in any order make the same object, as in JSON itself.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.count == rhs.count && lhs.members.allSatisfy { rhs[$0.key] == $0.value }
    }
}
