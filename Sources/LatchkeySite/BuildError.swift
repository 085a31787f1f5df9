/// A failed `latchkey build`, naming the step that failed and why.
public struct BuildError: Error, CustomStringConvertible {
    /// The pipeline step, e.g. `render pages`.
    public let step: String
    /// The reason, usually a `CoreError` naming a file and line or key.
    public let reason: String

    public var description: String { "\(step): \(reason)" }
}
