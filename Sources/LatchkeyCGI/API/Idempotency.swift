import LatchkeyCore
import LatchkeyStore

/// `Idempotency-Key` on API POSTs: the same key and request within 24 h answers as the first
/// time did, without doing anything again; the same key with another request is a 422.
enum Idempotency {
    /// Runs `handler` for `call`, or replays what it answered before. The lookup, the work and
    /// keeping its answer are one transaction, so a retry racing the first try waits for it
    /// and then replays it instead of doing the work twice.
    static func run(_ call: APICall, path: String, handler: () throws -> APIReply) throws -> APIReply {
        guard let idempotencyKey = call.context.request.idempotencyKey else { return try handler() }
        guard (1...255).contains(idempotencyKey.utf8.count), idempotencyKey.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw APIProblem(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
        }
        let body = try call.body(required: false)
        let services = call.services, db = services.db
        let hash = Sodium.keyedHash(APICall.fingerprint("POST", path, body), key: services.key.subkey(.apiSeal))
        let seal = services.key.subkey(.apiSeal)
        // The work below runs inside one transaction; what it may mail is read and parsed first.
        try services.mailer.prepare([.welcome, .reset])
        let outcome: Result<APIReply, APIProblem> = try db.write {
            if let kept = try db.idempotentAnswer(keyID: call.key.id, idempotencyKey: idempotencyKey, now: call.context.now) {
                guard Sodium.constantTimeEqual(kept.requestHash, hash) else {
                    return .failure(APIProblem(422, "this Idempotency-Key was used with a different request in the last 24 h"))
                }
                let text = Sodium.open(kept.sealedBody, key: seal).map { String(decoding: $0, as: UTF8.self) } ?? "\n\n"
                let (headers, body) = unpack(text)
                var reply = APIReply(kept.status, raw: body)
                reply.headers = headers + [("Idempotent-Replayed", "true")]
                return .success(reply)
            }
            let outcome: Result<APIReply, APIProblem>
            do {
                outcome = .success(try handler())
            } catch let problem as APIProblem where problem.status < 500 && problem.status != 429 {
                // A refusal is an answer too: the same request is refused the same way.
                outcome = .failure(problem)
            }
            let (status, body) = switch outcome {
            case let .success(reply): (reply.status, Array(pack(reply.headers, reply.body).utf8))
            case let .failure(problem): (problem.status, Array(pack([], String(decoding: problem.response.body, as: UTF8.self)).utf8))
            }
            try db.keepIdempotentAnswer(keyID: call.key.id, idempotencyKey: idempotencyKey, requestHash: hash, status: status,
                                        sealedBody: Sodium.seal(body, key: seal), now: call.context.now)
            return outcome
        }
        return try outcome.get()
    }

    /// The answer as kept: its headers (`Location` on a 201), a blank line, its body.
    static func pack(_ headers: [(String, String)], _ body: String) -> String {
        headers.map { $0.0 + ": " + $0.1 + "\n" }.joined() + "\n" + body
    }

    /// What `pack` kept.
    static func unpack(_ text: String) -> ([(String, String)], String) {
        var headers: [(String, String)] = []
        var rest = Substring(text)
        while let newline = rest.firstIndex(of: "\n") {
            let line = rest[..<newline]
            rest = rest[rest.index(after: newline)...]
            if line.isEmpty { break }
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers.append((String(parts[0]), String(parts[1]).trimmed)) }
        }
        return (headers, String(rest))
    }
}
