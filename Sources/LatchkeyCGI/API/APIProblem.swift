import LatchkeyCore

/// An API error, answered as RFC 9457 problem details (`application/problem+json`).
struct APIProblem: Error, CustomStringConvertible {
    let status: Int
    /// Said to the client: it is their request, so the detail helps them fix it.
    let detail: String
    /// The body field at fault, for a 422.
    var field: String?
    var headers: [(String, String)] = []

    init(_ status: Int, _ detail: String, field: String? = nil, headers: [(String, String)] = []) {
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers
    }

    var description: String { "\(status): " + (field.map { "\($0) " } ?? "") + detail }

    /// The answer.
    var response: CGIResponse {
        var members: [String: JSONOut] = ["type": .string("about:blank"), "title": .string(CGIResponse.reason(status)),
                                          "status": .int(Int64(status)), "detail": .string(detail)]
        if let field { members["field"] = .string(field) }
        return CGIResponse(status: status, headers: [("Content-Type", "application/problem+json")] + headers,
                           body: Array((JSONOut.object(members).text + "\n").utf8))
    }

    /// The problem for any error a handler let through.
    static func from(_ error: Error) -> APIProblem {
        switch error {
        case let problem as APIProblem: return problem
        case let http as HTTPError: return APIProblem(http.status, http.status >= 500 ? "the server could not answer" : http.reason, headers: http.headers)
        default: return APIProblem(500, "the server could not answer")
        }
    }
}
