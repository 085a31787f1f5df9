/// A command that cannot do what was asked; printed as one `error: …` line.
public struct CommandError: Error, CustomStringConvertible {
    /// The sentence shown to the operator.
    public let description: String

    /// An error with the sentence `message`.
    public init(_ message: String) { description = message }
}
