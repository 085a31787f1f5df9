/// One FastCGI record (FastCGI 1.0, §3.3): an 8-byte header, up to 65,535 bytes of content, and
/// padding. Only the types a responder meets are named; any other is answered `UNKNOWN_TYPE`.
public struct FastCGIRecord: Equatable, Sendable {
    /// The record types of §8.
    public enum Kind: UInt8, Sendable {
        case beginRequest = 1, abortRequest, endRequest, params, stdin, stdout, stderr, data
        case getValues, getValuesResult, unknownType
    }

    /// The `role` of a BEGIN_REQUEST body.
    public enum Role: UInt16, Sendable { case responder = 1, authorizer, filter }

    /// The `protocolStatus` of an END_REQUEST body.
    public enum ProtocolStatus: UInt8, Sendable { case requestComplete = 0, cantMultiplex, overloaded, unknownRole }

    /// The only version there is.
    public static let version: UInt8 = 1
    /// Header length.
    public static let headerBytes = 8
    /// Most content one record carries.
    public static let maxContentBytes = 65535
    /// The BEGIN_REQUEST flag that keeps the connection open after the request.
    public static let keepConnection: UInt8 = 1

    /// The raw type byte (a `Kind` for every type this side knows).
    public let type: UInt8
    /// 0 for management records, else the request's id.
    public let requestID: UInt16
    /// The content, padding removed.
    public let content: [UInt8]

    /// A record of `type` for `requestID` carrying `content` (at most `maxContentBytes`).
    public init(type: UInt8, requestID: UInt16, content: [UInt8]) {
        self.type = type
        self.requestID = requestID
        self.content = content
    }

    /// A record of a known `kind`.
    public init(_ kind: Kind, requestID: UInt16, content: [UInt8] = []) {
        self.init(type: kind.rawValue, requestID: requestID, content: content)
    }

    /// The known kind, if any.
    public var kind: Kind? { Kind(rawValue: type) }

    /// The record's wire form, padded to a multiple of 8 bytes as the spec recommends.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        FastCGIRecord.append(type: type, requestID: requestID, content: content[...], to: &out)
        return out
    }

    /// Appends one record's wire form to `out`; `content` must be at most `maxContentBytes`.
    public static func append(type: UInt8, requestID: UInt16, content: ArraySlice<UInt8>, to out: inout [UInt8]) {
        let padding = (8 - content.count % 8) % 8
        out += [version, type, UInt8(requestID >> 8), UInt8(requestID & 0xff),
                UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(padding), 0]
        out += content
        out += repeatElement(0, count: padding)
    }

    /// Appends `bytes` as as many records of `kind` as it takes; empty `bytes` append nothing.
    public static func appendStream(_ kind: Kind, requestID: UInt16, _ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        var rest = bytes
        while !rest.isEmpty {
            let piece = rest.prefix(maxContentBytes)
            append(type: kind.rawValue, requestID: requestID, content: piece, to: &out)
            rest = rest.dropFirst(piece.count)
        }
    }

    /// The END_REQUEST record for `requestID`.
    public static func endRequest(_ requestID: UInt16, appStatus: UInt32 = 0, _ status: ProtocolStatus = .requestComplete) -> FastCGIRecord {
        FastCGIRecord(.endRequest, requestID: requestID,
                      content: [UInt8(appStatus >> 24), UInt8((appStatus >> 16) & 0xff), UInt8((appStatus >> 8) & 0xff),
                                UInt8(appStatus & 0xff), status.rawValue, 0, 0, 0])
    }
}

/// Cuts a byte stream into records. Bytes are added as they arrive; `next()` gives each whole
/// record once all of it, padding included, is in. A header with another version is an error,
/// since nothing after it can be framed.
public struct FastCGIRecordReader: Sendable {
    /// Why a stream cannot be read on.
    public enum Failure: Error, Equatable { case badVersion(UInt8) }

    private var buffer: [UInt8] = []
    private var start = 0

    /// An empty reader.
    public init() {}

    /// Bytes received but not yet given out as records.
    public var pending: Int { buffer.count - start }

    /// Adds received bytes.
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer += bytes
    }

    /// The next whole record, or nil until more bytes arrive.
    public mutating func next() throws(Failure) -> FastCGIRecord? {
        guard pending >= FastCGIRecord.headerBytes else { return nil }
        let h = start
        guard buffer[h] == FastCGIRecord.version else { throw .badVersion(buffer[h]) }
        let length = Int(buffer[h + 4]) << 8 | Int(buffer[h + 5])
        let padding = Int(buffer[h + 6])
        let total = FastCGIRecord.headerBytes + length + padding
        guard pending >= total else { return nil }
        let content = Array(buffer[(h + 8)..<(h + 8 + length)])
        let record = FastCGIRecord(type: buffer[h + 1], requestID: UInt16(buffer[h + 2]) << 8 | UInt16(buffer[h + 3]), content: content)
        start += total
        if start > 1 << 16 {
            buffer.removeFirst(start)
            start = 0
        }
        return record
    }

    /// Overwrites what the reader holds (request bodies carry passwords) and empties it.
    public mutating func wipe() {
        wipeBytes(&buffer)
        start = 0
    }
}
