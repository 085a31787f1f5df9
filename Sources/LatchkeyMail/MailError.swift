/// A message that could not be built or handed over; the sentence goes into the email history.
public struct MailError: Error, CustomStringConvertible {
    /// The sentence recorded as the message's error.
    public let description: String

    /// An error with the sentence `message`.
    public init(_ message: String) { description = message }
}
