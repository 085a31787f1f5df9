/// Turns records into whole requests, one at a time (FastCGI 1.0 responder, with the authorizer
/// role for the session check). Management records are answered at once; a second request on
/// the connection while one is open is refused `CANT_MPX_CONN`; params and body are bounded.
/// Pure: it reads no socket, so the fuzzer and unit tests drive it with any bytes.
public struct FastCGIAssembler: Sendable {
    /// A request whose params and body have all arrived.
    public struct Request: Sendable {
        /// The request id every answer record carries.
        public let id: UInt16
        /// Responder, or authorizer (which gets no body and no `SCRIPT_NAME`).
        public let role: FastCGIRecord.Role
        /// True when the server keeps the connection for another request.
        public let keepConnection: Bool
        /// The params as the CGI environment they stand for.
        public var environment: [String: String]
        /// The body, up to `maxBodyBytes`.
        public var body: [UInt8]
        /// Set when the request is to be refused without running an endpoint: status and reason.
        public var refusal: (status: Int, reason: String)?
    }

    /// What the connection does next.
    public enum Event: Sendable {
        /// Run this request and answer it.
        case request(Request)
        /// Send these bytes (a management answer, or an END_REQUEST refusing a second request).
        case send([UInt8])
        /// Send this END_REQUEST of a request ended unanswered (aborted, or a role refused); the
        /// connection stays open only if the server asked to keep it.
        case ended([UInt8], keepConnection: Bool)
        /// The peer broke the protocol: close the connection.
        case close(String)
    }

    /// Most bytes of params one request may carry; nginx sends every header, and cookies are
    /// capped at 4 KiB each by browsers.
    public static let maxParamsBytes = 64 * 1024
    /// Most body bytes kept: above every endpoint's own limit, which then answers 413 by
    /// `CONTENT_LENGTH`. The rest is read and dropped, so the connection stays in step.
    public static let maxBodyBytes = 1 << 20

    private struct Partial {
        let id: UInt16
        let role: FastCGIRecord.Role
        let keep: Bool
        var params: [UInt8] = []
        var paramsDone = false
        var body: [UInt8] = []
        var bodyDropped = false
        var oversizedParams = false
    }

    private var partial: Partial?
    /// The params kept (nil: all); the rest are checked and dropped.
    private let keeping: Set<String>?

    /// An assembler with no request open, keeping the params named in `keeping` (nil: all).
    public init(keeping: Set<String>? = nil) { self.keeping = keeping }

    /// True while a request has begun and not yet all arrived.
    public var isMidRequest: Bool { partial != nil }

    /// Takes one record; says what to do, if anything.
    public mutating func take(_ record: FastCGIRecord) -> Event? {
        if record.requestID == 0 { return management(record) }
        guard let kind = record.kind else { return nil }
        switch kind {
        case .beginRequest:
            return begin(record)
        case .abortRequest:
            guard let open = partial, open.id == record.requestID else { return nil }
            wipe()
            return .ended(FastCGIRecord.endRequest(record.requestID).encoded, keepConnection: open.keep)
        case .params:
            guard var open = partial, open.id == record.requestID, !open.paramsDone else { return nil }
            partial = nil
            if record.content.isEmpty {
                open.paramsDone = true
            } else if open.params.count + record.content.count > FastCGIAssembler.maxParamsBytes {
                open.oversizedParams = true
                wipeBytes(&open.params)
            } else {
                open.params += record.content
            }
            partial = open
            // An authorizer is sent no body: it is whole once its params are.
            return open.paramsDone && open.role == .authorizer ? finish() : nil
        case .stdin:
            guard var open = partial, open.id == record.requestID else { return nil }
            partial = nil
            if record.content.isEmpty {
                partial = open
                return finish()
            }
            if open.body.count + record.content.count > FastCGIAssembler.maxBodyBytes {
                open.bodyDropped = true
            } else {
                open.body += record.content
            }
            partial = open
            return nil
        default:
            // DATA (filter role only) and records a responder never receives are ignored (§3.3).
            return nil
        }
    }

    /// Overwrites and drops a request that will not be answered.
    public mutating func wipe() {
        guard var open = partial else { return }
        wipeBytes(&open.params)
        wipeBytes(&open.body)
        partial = nil
    }

    private mutating func begin(_ record: FastCGIRecord) -> Event? {
        if let open = partial {
            if open.id == record.requestID { return .close("BEGIN_REQUEST again for open request \(open.id)") }
            return .send(FastCGIRecord.endRequest(record.requestID, .cantMultiplex).encoded)
        }
        guard record.content.count == 8 else { return .close("BEGIN_REQUEST body of \(record.content.count) bytes") }
        let rawRole = UInt16(record.content[0]) << 8 | UInt16(record.content[1])
        guard let role = FastCGIRecord.Role(rawValue: rawRole), role != .filter else {
            return .ended(FastCGIRecord.endRequest(record.requestID, .unknownRole).encoded,
                          keepConnection: record.content[2] & FastCGIRecord.keepConnection != 0)
        }
        partial = Partial(id: record.requestID, role: role, keep: record.content[2] & FastCGIRecord.keepConnection != 0)
        return nil
    }

    private mutating func finish() -> Event? {
        guard var open = partial else { return nil }
        partial = nil
        var request = Request(id: open.id, role: open.role, keepConnection: open.keep, environment: [:], body: open.body)
        if open.oversizedParams {
            request.refusal = (431, "FastCGI params above \(FastCGIAssembler.maxParamsBytes) bytes")
        } else if !open.paramsDone {
            request.refusal = (400, "body before the end of the params")
        } else {
            do {
                let pairs = try FastCGIParams.decode(open.params, keeping: keeping)
                request.environment.reserveCapacity(pairs.count)
                for (name, value) in pairs { request.environment[name] = value }
            } catch {
                request.refusal = (400, "malformed FastCGI params (\(error))")
            }
        }
        if open.bodyDropped {
            // The endpoint refuses it by its declared length; the dropped bytes never reach it.
            request.body = []
            if request.refusal == nil, (Int(request.environment["CONTENT_LENGTH"] ?? "") ?? 0) <= FastCGIAssembler.maxBodyBytes {
                request.refusal = (413, "body longer than CONTENT_LENGTH says")
            }
        }
        wipeBytes(&open.params)
        return .request(request)
    }

    private func management(_ record: FastCGIRecord) -> Event? {
        guard record.kind == .getValues else {
            return .send(FastCGIRecord(.unknownType, requestID: 0, content: [record.type, 0, 0, 0, 0, 0, 0, 0]).encoded)
        }
        guard let asked = try? FastCGIParams.decode(record.content) else { return .close("malformed GET_VALUES") }
        let known = ["FCGI_MAX_CONNS": "1", "FCGI_MAX_REQS": "1", "FCGI_MPXS_CONNS": "0"]
        let answer = asked.compactMap { name, _ in known[name].map { (name, $0) } }
        return .send(FastCGIRecord(.getValuesResult, requestID: 0, content: FastCGIParams.encode(answer)).encoded)
    }
}

/// Overwrites `bytes` before letting them go: params carry cookies, bodies carry passwords.
func wipeBytes(_ bytes: inout [UInt8]) {
    for i in bytes.indices { bytes[i] = 0 }
    bytes.removeAll()
}
