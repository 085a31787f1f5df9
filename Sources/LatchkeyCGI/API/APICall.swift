import LatchkeyAccounts
import LatchkeyCore
import LatchkeyStore

/// One authenticated API request: the key that made it, its services, its JSON body.
struct APICall {
    /// Largest JSON body read (SPEC §11).
    static let maxBodyBytes = 64 * 1024

    let context: Context
    let services: Services
    let key: APIKeys.Key
    /// The route's path segments that `{…}` stood for.
    let parameters: [String]
    /// The body once read: standard input can be read only once.
    let cache = BodyCache()

    /// Holds the parsed body.
    final class BodyCache { var members: JSONObject?; var absent = false }

    /// Who acts, for the audit trail: `api:NAME` from the client's address.
    var actor: Support.Actor { Support.Actor(key.actorName, remoteAddr: context.request.remoteAddr) }

    /// The bearer key of `request`, checked, with its rate counted: 401 without a live key,
    /// 429 (with `Retry-After`) beyond `api.rate_limit`.
    static func authenticate(_ context: Context, services: Services) throws -> APIKeys.Key {
        let header = context.request.authorization ?? ""
        guard header.count <= 200, header.lowercased().hasPrefix("bearer "),
              let key = try APIKeys.authenticate(String(header.dropFirst(7)).trimmed, services: services) else {
            throw APIProblem(401, "a valid API key is required: Authorization: Bearer lk_…", headers: [("WWW-Authenticate", "Bearer realm=\"latchkey\"")])
        }
        if let wait = try APIKeys.admit(key, services: services, now: context.now) {
            throw APIProblem(429, "key \(key.name) is over api.rate_limit; retry in \(wait) s", headers: [("Retry-After", String(wait))])
        }
        return key
    }

    /// 403 unless the key holds `scope`.
    func require(_ scope: APIKeys.Scope) throws {
        guard key.scopes.contains(scope) else { throw APIProblem(403, "this key lacks the \(scope.rawValue) scope") }
    }

    /// The body as a JSON object, reading it once: `{}` when there is none and `required` is false.
    func body(required: Bool) throws -> JSONObject {
        if cache.members == nil {
            cache.members = try readBody()
        }
        guard !(required && cache.absent) else { throw APIProblem(422, "a JSON body is required") }
        return cache.members ?? [:]
    }

    private func readBody() throws -> JSONObject {
        let request = context.request
        if request.contentLength == 0 || (request.contentLength == nil && request.contentType == nil) {
            cache.absent = true
            return [:]
        }
        let type = request.contentType?.split(separator: ";").first.map { String($0).trimmed.lowercased() }
        guard type == "application/json" else { throw APIProblem(415, "send application/json, not \(request.contentType?.prefix(60) ?? "no content type")") }
        let bytes: [UInt8]
        // Marked read only once it is: a body refused unread (413, 415) is drained by the
        // pipeline, as Apache resets a connection whose body the CGI never read.
        do { bytes = try FormData.readBytes(request, limit: APICall.maxBodyBytes) } catch let error as HTTPError {
            throw APIProblem(error.status, error.reason)
        }
        context.body.read = true
        guard case let .object(members) = (try? JSONValue.parse(bytes)) ?? .null else { throw APIProblem(400, "the body is not a JSON object") }
        return members
    }

    /// What identifies a request for `Idempotency-Key`: method, path and the parsed body (the
    /// same members in any order are the same request).
    static func fingerprint(_ method: String, _ path: String, _ body: JSONObject) -> [UInt8] {
        Array((method + " " + path + "\n" + JSONCanonical.text(.object(body))).utf8)
    }
}

/// Reads the fields of a JSON body strictly: unknown fields and wrong types are 422s naming the field.
struct APIFields {
    let members: JSONObject

    init(_ members: JSONObject, allowed: [String]) throws {
        if let unknown = members.keys.filter({ !allowed.contains($0) }).min() {
            throw APIProblem(422, "unknown field (known: \(allowed.joined(separator: ", ")))", field: unknown)
        }
        self.members = members
    }

    /// String field `name`; nil when absent (or null).
    func string(_ name: String, required: Bool = false) throws -> String? {
        switch members[name] {
        case nil, .null?:
            if required { throw APIProblem(422, "is required", field: name) }
            return nil
        case let .string(s)?: return s
        default: throw APIProblem(422, "must be a string", field: name)
        }
    }

    /// Boolean field `name`, or `fallback`.
    func bool(_ name: String, default fallback: Bool) throws -> Bool {
        switch members[name] {
        case nil, .null?: return fallback
        case let .bool(b)?: return b
        default: throw APIProblem(422, "must be true or false", field: name)
        }
    }
}

/// JSON with keys sorted, for hashing a request.
enum JSONCanonical {
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(n): return String(n)
        case let .string(s): return JSONOut.quote(s)
        case let .array(items): return "[" + items.map(text).joined(separator: ",") + "]"
        case let .object(members): return "{" + members.sorted { $0.key < $1.key }.map { JSONOut.quote($0.key) + ":" + text($0.value) }.joined(separator: ",") + "}"
        }
    }
}
