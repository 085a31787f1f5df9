/// A request refused with a 4xx (or a 5xx we cannot help); the reason goes to the server log,
/// never to the page, which only names the status.
public struct HTTPError: Error, CustomStringConvertible {
    /// The HTTP status.
    public let status: Int
    /// Why, for the error log.
    public let reason: String
    /// Extra headers, such as `Allow` on a 405.
    public var headers: [(String, String)] = []

    /// A refusal with `status` for `reason`.
    public init(_ status: Int, _ reason: String, headers: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public var description: String { "\(status): \(reason)" }
}
