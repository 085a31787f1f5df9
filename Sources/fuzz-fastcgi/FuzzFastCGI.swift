import LatchkeyCGI
import LatchkeyCore

/// Bytes as a web server would send them down a FastCGI connection, cut at every length the
/// fuzzer picks: records, then requests. Nothing may crash or hold more than its bounds, and the
/// params parser is also fed the raw bytes (CVE-2025-23016 was a params parser's lengths).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFastCGI(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? FastCGIParams.decode(bytes)
    // The first byte picks how the stream arrives: whole, or in pieces of 1 to 255 bytes.
    let piece = max(1, Int(bytes.first ?? 0))
    var reader = FastCGIRecordReader()
    var assembler = FastCGIAssembler()
    var offset = 0
    feeding: while offset < bytes.count {
        let end = min(bytes.count, offset + piece)
        reader.append(bytes[offset..<end])
        offset = end
        while true {
            guard let record = try? reader.next() else { break feeding }
            guard let event = assembler.take(record) else { continue }
            switch event {
            case .request(let request):
                precondition(request.body.count <= FastCGIAssembler.maxBodyBytes)
            case .send(let answer), .ended(let answer, _):
                precondition(answer.count % 8 == 0, "records are padded to 8 bytes")
            case .close:
                break feeding
            }
        }
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer: replays the files named on the command line (crash reproducers).
@main struct ReplayFastCGI {
    static func main() { FuzzReplay.run(fuzzFastCGI) }
}
#endif
