import Glibc
import LatchkeyCore

/// One members file answered as HTTP caches and players expect: validators (`ETag`,
/// `Last-Modified`) with 304s, single byte ranges with 206 / 416, and the body streamed from
/// the file after the headers, whatever its size.
struct MembersFile {
    let path: String
    let size: Int64
    let modified: Int64
    let inode: UInt64

    /// The regular file at `path`, or nil.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        self.path = path
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        inode = UInt64(info.st_ino)
    }

    /// Changes whenever the file is replaced or rewritten.
    var etag: String { "\"" + String(inode, radix: 16) + "-" + String(size, radix: 16) + "-" + String(modified, radix: 16) + "\"" }

    /// The answer to `request` (GET or HEAD) with content type `type`.
    func response(_ request: CGIRequest, type: String) -> CGIResponse {
        let modifiedText = Clock.httpDate(modified)
        var headers: [(String, String)] = [("Content-Type", type), ("ETag", etag), ("Last-Modified", modifiedText), ("Accept-Ranges", "bytes")]
        if let match = request.ifNoneMatch {
            if match == "*" || match.split(separator: ",").contains(where: { String($0).trimmed.replacingPrefix("W/") == etag }) {
                return CGIResponse(status: 304, headers: headers.filter { $0.0 != "Content-Type" })
            }
        } else if request.ifModifiedSince == modifiedText {
            return CGIResponse(status: 304, headers: headers.filter { $0.0 != "Content-Type" })
        }
        var range = 0..<size
        var status = 200
        // If-Range names the version the client holds; for another one the whole file is sent.
        if let header = request.range, request.ifRange.map({ $0 == etag || $0 == modifiedText }) ?? true {
            switch MembersFile.range(header, size: size) {
            case let .some(.some(wanted)):
                range = wanted
                status = 206
                headers.append(("Content-Range", "bytes \(wanted.lowerBound)-\(wanted.upperBound - 1)/\(size)"))
            case .some(.none):
                return CGIResponse(status: 416, headers: [("Content-Range", "bytes */\(size)")])
            case .none:
                break
            }
        }
        var response = CGIResponse(status: status, headers: headers)
        response.file = CGIResponse.FileBody(path: path, offset: range.lowerBound, length: range.upperBound - range.lowerBound,
                                             headOnly: request.method == "HEAD")
        return response
    }

    /// The bytes a `Range` header asks for: nil to ignore it (not one `bytes=` range: the
    /// whole file is an allowed answer), `.some(nil)` when it cannot be satisfied (416).
    static func range(_ header: String, size: Int64) -> Range<Int64>?? {
        guard header.hasPrefix("bytes="), !header.includes(",") else { return nil }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).trimmed }
        guard spec.count == 2, spec.allSatisfy({ $0.utf8.allSatisfy { (0x30...0x39).contains($0) } && $0.utf8.count <= 18 }) else { return nil }
        switch (Int64(spec[0]), Int64(spec[1])) {
        case let (first?, last):
            guard first < size else { return .some(nil) }
            let end = min(last.map { $0 + 1 } ?? size, size)
            return end > first ? .some(first..<end) : nil
        case let (nil, suffix?):
            guard suffix > 0, size > 0 else { return .some(nil) }
            return .some(max(0, size - suffix)..<size)
        default:
            return nil
        }
    }
}

extension String {
    /// Without `prefix` when it starts with it.
    func replacingPrefix(_ prefix: String) -> String { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self }
}
