import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// `api/v1/…`: the JSON integration API (SPEC §11). The route table below and the document's
/// own path are the one list of what is served; the OpenAPI document in `api/openapi.json`
/// describes exactly these routes (a unit test holds the two together).
enum APIEndpoint {
    /// One route: method, path template (`{id}` matches a segment), the scope it needs, the handler.
    struct Route: Sendable {
        let method: String
        let path: String
        let scope: APIKeys.Scope
        let handler: @Sendable (APICall) throws -> APIReply
    }

    /// The OpenAPI document, served to anyone: it holds nothing of the site's.
    static let documentPath = "/v1/openapi.json"

    static let routes: [Route] = [
        Route(method: "GET", path: "/v1/people", scope: .peopleRead, handler: PeopleAPI.find),
        Route(method: "POST", path: "/v1/people", scope: .peopleWrite, handler: PeopleAPI.upsert),
        Route(method: "GET", path: "/v1/people/{id}", scope: .peopleRead, handler: PeopleAPI.show),
        Route(method: "POST", path: "/v1/people/{id}/access", scope: .accessWrite, handler: PeopleAPI.grant),
        Route(method: "DELETE", path: "/v1/people/{id}/access/{offer}", scope: .accessWrite, handler: PeopleAPI.revoke),
        Route(method: "POST", path: "/v1/people/{id}/reset", scope: .mailSend, handler: PeopleAPI.reset),
        Route(method: "POST", path: "/v1/people/{id}/welcome", scope: .mailSend, handler: PeopleAPI.welcome),
        Route(method: "GET", path: "/v1/offers", scope: .peopleRead, handler: PeopleAPI.offers),
    ]

    static func handle(_ context: Context) throws -> Reply {
        do {
            return try answer(context)
        } catch {
            let problem = APIProblem.from(error)
            if problem.status >= 500 { CGIApp.log("api", "error", "\(error)") }
            return Reply(problem.response)
        }
    }

    static func answer(_ context: Context) throws -> Reply {
        let path = context.request.pathInfo
        guard path.utf8.count <= 300, !path.hasControlCharacters else { throw APIProblem(404, "no such resource") }
        if path == documentPath {
            try context.request.require(["GET"])
            return Reply(APIReply(200, raw: OpenAPIDocument.text(for: context.config)).response)
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        var matched: [(Route, [String])] = []
        for route in routes {
            if let parameters = match(route.path, segments) { matched.append((route, parameters)) }
        }
        guard !matched.isEmpty else { throw APIProblem(404, "no such resource: \(path.prefix(80))") }
        guard let (route, parameters) = matched.first(where: { $0.0.method == context.request.method }) else {
            throw APIProblem(405, "\(context.request.method.prefix(10)) is not allowed here",
                             headers: [("Allow", matched.map(\.0.method).joined(separator: ", "))])
        }
        let services = try context.services()
        let key = try APICall.authenticate(context, services: services)
        let call = APICall(context: context, services: services, key: key, parameters: parameters)
        try call.require(route.scope)
        guard route.method == "POST" else {
            let reply = try route.handler(call)
            return Reply(reply.response, after: reply.mail.isEmpty ? nil : .deliver(reply.mail))
        }
        let reply = try Idempotency.run(call, path: path) { try route.handler(call) }
        return Reply(reply.response, after: reply.mail.isEmpty ? nil : .deliver(reply.mail))
    }

    /// The values of `template`'s `{…}` segments when `segments` fit it, else nil.
    static func match(_ template: String, _ segments: [String]) -> [String]? {
        let parts = template.split(separator: "/").map(String.init)
        guard parts.count == segments.count else { return nil }
        var values: [String] = []
        for (part, segment) in zip(parts, segments) {
            if part.hasPrefix("{") { guard !segment.isEmpty else { return nil }; values.append(segment) } else if part != segment { return nil }
        }
        return values
    }
}

/// What an API handler answers: a status and a JSON body, and the mail to send after it.
struct APIReply {
    let status: Int
    let body: String
    var headers: [(String, String)] = []
    var mail: [Int64] = []

    init(_ status: Int, _ json: JSONOut? = nil, headers: [(String, String)] = [], mail: [Int64] = []) {
        self.status = status
        body = json.map { $0.text + "\n" } ?? ""
        self.headers = headers
        self.mail = mail
    }

    init(_ status: Int, raw: String) {
        self.status = status
        body = raw
    }

    var response: CGIResponse {
        let type = status >= 400 ? "application/problem+json" : "application/json"
        return CGIResponse(status: status, headers: (body.isEmpty ? [] : [("Content-Type", type)]) + headers, body: Array(body.utf8))
    }
}
