import LatchkeyStore

/// Whom a message goes to: a person on file (whose history it joins), or a staff member.
public struct MailRecipient: Sendable {
    /// The person the message is recorded for; nil for staff mail.
    public var personID: Int64?
    /// The address.
    public var email: String
    /// The display name; may be empty.
    public var name: String
    /// Their language; empty for the site's default.
    public var locale: String

    /// A recipient who is not a person on file.
    public init(email: String, name: String, locale: String) {
        personID = nil
        self.email = email
        self.name = name
        self.locale = locale
    }

    /// `person`, at their address on file.
    public init(_ person: Person) {
        personID = person.id
        email = person.email
        name = person.name
        locale = person.locale
    }
}
