import Glibc
import LatchkeyCore

/// One connection from the web server: records in, whole requests to the worker, answers out as
/// STDOUT records and an END_REQUEST. Reads wait at most `readTimeout` for the next bytes of a
/// request and the whole request at most four times that, so a slow or stalled client holds a
/// worker for a bounded time; an idle kept connection is given up when the worker must stop.
struct FastCGIConnection {
    let fd: Int32
    /// Readable when the worker has been told to stop.
    let stopSignal: Int32
    let readTimeout: Int32

    /// The params a request keeps: what the endpoints read, and what routes it.
    static let variables = Set(CGIApp.variables + ["SCRIPT_NAME", "PATH_INFO"])

    /// How long a kept connection may sit idle between requests.
    static let idleMilliseconds: Int32 = 60_000

    /// Serves requests until the server closes the connection, breaks the protocol, is too
    /// slow, or `answer` returns false (the worker must not take another request).
    /// `buffer` is the worker's, reused: what a connection put in it is overwritten at its end.
    func serve(buffer: inout [UInt8], _ answer: (FastCGIAssembler.Request, inout FastCGIOutput) -> Bool) {
        var reader = FastCGIRecordReader()
        var assembler = FastCGIAssembler(keeping: FastCGIConnection.variables)
        var used = 0
        defer {
            reader.wipe()
            assembler.wipe()
            buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, used) }
        }
        var requestStarted: Int64 = 0
        // Once told to stop the signal stays readable, so it is no longer waited on; and a
        // connection that has answered nothing yet is not idle: the server sent, or is about to
        // send, its request on it.
        var stopping = false, answered = 0
        while true {
            do {
                while let record = try reader.next() {
                    switch assembler.take(record) {
                    case .send(let bytes):
                        guard CGIResponse.writeAll(bytes[...], to: fd) else { return }
                    case .ended(let bytes, let keepConnection):
                        guard CGIResponse.writeAll(bytes[...], to: fd), keepConnection else { return }
                    case .close(let reason):
                        CGIApp.log("fastcgi", "refused", reason)
                        return
                    case .request(var request):
                        var output = FastCGIOutput(fd: fd, requestID: request.id)
                        let goOn = answer(request, &output)
                        answered += 1
                        wipeBytes(&request.body)
                        guard output.end(), goOn, request.keepConnection else { return }
                        requestStarted = 0
                    case nil:
                        break
                    }
                }
            } catch {
                CGIApp.log("fastcgi", "refused", "\(error)")
                return
            }
            let midRequest = assembler.isMidRequest || reader.pending > 0
            if midRequest && requestStarted == 0 { requestStarted = Clock.monotonicMilliseconds() }
            if !midRequest { requestStarted = 0 }
            var wait = midRequest || (stopping && answered == 0) ? readTimeout : FastCGIConnection.idleMilliseconds
            if midRequest {
                let left = Int64(readTimeout) * 4 - (Clock.monotonicMilliseconds() - requestStarted)
                guard left > 0 else { return CGIApp.log("fastcgi", "refused", "request not complete within \(readTimeout * 4) ms") }
                wait = Int32(min(Int64(wait), left))
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopping ? -1 : stopSignal, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, wait)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else {
                guard midRequest else { return }
                let whole = Clock.monotonicMilliseconds() - requestStarted >= Int64(readTimeout) * 4
                return CGIApp.log("fastcgi", "refused", whole ? "request not complete within \(readTimeout * 4) ms"
                                                                : "no bytes for \(readTimeout) ms mid-request")
            }
            // Told to stop: a kept connection sitting idle is given up; a request under way, or
            // the first on a new connection, is answered first.
            if fds[1].revents != 0 { stopping = true }
            if stopping && fds[0].revents == 0 && !midRequest && answered > 0 { return }
            guard fds[0].revents != 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            used = max(used, n)
            reader.append(buffer[..<n])
        }
    }
}

/// A request's answer on its way out: STDOUT records gathered and written in large pieces, then
/// the empty STDOUT and END_REQUEST that close the stream.
struct FastCGIOutput {
    let fd: Int32
    let requestID: UInt16
    private var pending: [UInt8] = []
    private var failed = false
    private var ended = false

    init(fd: Int32, requestID: UInt16) {
        self.fd = fd
        self.requestID = requestID
        pending.reserveCapacity(4096)
    }

    /// Adds answer bytes; false once the server has gone away.
    mutating func send(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !failed else { return false }
        FastCGIRecord.appendStream(.stdout, requestID: requestID, bytes, to: &pending)
        if pending.count >= 1 << 18 { flush() }
        return !failed
    }

    /// Ends the request (once, however often called): the empty STDOUT, END_REQUEST, and
    /// everything written. False when the server is gone.
    mutating func end() -> Bool {
        guard !ended else { return !failed }
        ended = true
        FastCGIRecord.append(type: FastCGIRecord.Kind.stdout.rawValue, requestID: requestID, content: [], to: &pending)
        pending += FastCGIRecord.endRequest(requestID).encoded
        flush()
        return !failed
    }

    private mutating func flush() {
        if !failed && !CGIResponse.writeAll(pending[...], to: fd) { failed = true }
        pending.removeAll(keepingCapacity: true)
    }
}
