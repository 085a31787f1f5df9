/// A message that could not be built or handed over; the sentence goes into the email history.
public struct MailError: Error, CustomStringConvertible {
    public let description: String

    /// An error with the sentence `message`.
    public init(_ message: String) { description = message }
}
