import Testing
@testable import LatchkeyCGI
@testable import LatchkeyCore

/// The FastCGI layer against byte strings written out by hand from the spec (FastCGI 1.0
/// §3, §5, §8), and the shapes that broke other parsers: lengths that overflow, records cut
/// short, a second request multiplexed into the first, params and bodies past their bounds.
@Suite struct FastCGITests {
    func record(_ type: UInt8, _ id: UInt16, _ content: [UInt8], padding: Int? = nil) -> [UInt8] {
        let pad = padding ?? (8 - content.count % 8) % 8
        return [1, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(pad), 0]
            + content + [UInt8](repeating: 0, count: pad)
    }

    func begin(_ id: UInt16, role: UInt8 = 1, keep: Bool = false) -> [UInt8] {
        record(1, id, [0, role, keep ? 1 : 0, 0, 0, 0, 0, 0])
    }

    /// `name=value` as one pair with one-byte lengths.
    func pair(_ name: String, _ value: String) -> [UInt8] {
        [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
    }

    /// Everything `bytes` makes the assembler do, fed `piece` bytes at a time.
    func events(_ bytes: [UInt8], piece: Int = 1 << 20) -> [FastCGIAssembler.Event] {
        var reader = FastCGIRecordReader()
        var assembler = FastCGIAssembler()
        var out: [FastCGIAssembler.Event] = []
        var offset = 0
        while offset < bytes.count {
            reader.append(bytes[offset..<min(bytes.count, offset + piece)])
            offset += piece
            while let record = try? reader.next() {
                if let event = assembler.take(record) { out.append(event) }
            }
        }
        return out
    }

    func requests(_ events: [FastCGIAssembler.Event]) -> [FastCGIAssembler.Request] {
        events.compactMap { if case .request(let r) = $0 { r } else { nil } }
    }

    @Test func aRecordIsFramedWithItsPaddingAndRoundTrips() throws {
        let built = FastCGIRecord(.stdout, requestID: 258, content: Array("hello".utf8)).encoded
        #expect(built == [1, 6, 1, 2, 0, 5, 3, 0] + Array("hello".utf8) + [0, 0, 0])
        var reader = FastCGIRecordReader()
        reader.append(built[...])
        #expect(try reader.next() == FastCGIRecord(.stdout, requestID: 258, content: Array("hello".utf8)))
        #expect(try reader.next() == nil)
    }

    @Test func aRequestArrivesWholeHoweverTheBytesAreCut() {
        let body = Array("email=a%40example.com".utf8)
        let stream = begin(1, keep: true) + record(4, 1, pair("REQUEST_METHOD", "POST") + pair("CONTENT_LENGTH", "21"))
            + record(4, 1, []) + record(5, 1, Array(body[..<5])) + record(5, 1, Array(body[5...])) + record(5, 1, [])
        for piece in [1, 3, 8, 9, 1000] {
            let got = requests(events(stream, piece: piece))
            #expect(got.count == 1)
            #expect(got.first?.environment["REQUEST_METHOD"] == "POST")
            #expect(got.first?.body == body)
            #expect(got.first?.keepConnection == true)
            #expect(got.first?.refusal == nil)
        }
    }

    @Test func paramsLengthsOfFourBytesAreReadAndOverflowingOnesRefused() throws {
        let long = String(repeating: "v", count: 300)
        let encoded = FastCGIParams.encode([("NAME", long)])
        #expect(Array(encoded.prefix(5)) == [4, 0x80, 0, 1, 44])
        #expect(try FastCGIParams.decode(encoded).first?.1 == long)
        // CVE-2025-23016's shape: a name length of 2^31 - 1 with two bytes behind it.
        #expect(throws: FastCGIParams.Failure.truncated) { try FastCGIParams.decode([0xff, 0xff, 0xff, 0xff, 0x01, 0x61, 0x62]) }
        // Two lengths whose sum passes 2^32.
        #expect(throws: FastCGIParams.Failure.truncated) { try FastCGIParams.decode([0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff, 0xf0]) }
        #expect(throws: FastCGIParams.Failure.truncated) { try FastCGIParams.decode([0x05, 0x80, 0x00]) }
        #expect(throws: FastCGIParams.Failure.notText) { try FastCGIParams.decode([1, 1, 0x41, 0xff]) }
    }

    @Test func aSecondRequestOnTheConnectionIsRefusedAndTheFirstGoesOn() {
        let stream = begin(1) + begin(2) + record(4, 1, pair("A", "b")) + record(4, 1, []) + record(5, 1, [])
        let got = events(stream)
        guard got.count == 2, case .send(let refusal) = got[0], case .request(let first) = got[1] else {
            Issue.record("expected a refusal then the request, got \(got)")
            return
        }
        #expect(refusal == FastCGIRecord.endRequest(2, .cantMultiplex).encoded)
        #expect(first.id == 1 && first.environment == ["A": "b"])
    }

    @Test func managementRecordsAreAnswered() {
        let asked = record(9, 0, pair("FCGI_MPXS_CONNS", "") + pair("FCGI_MAX_REQS", "") + pair("OTHER", ""))
        guard case .send(let answer)? = events(asked).first else { Issue.record("no answer"); return }
        var reader = FastCGIRecordReader()
        reader.append(answer[...])
        let result = try? reader.next()
        #expect(result?.kind == .getValuesResult)
        let pairs = (try? FastCGIParams.decode(result?.content ?? [])) ?? []
        #expect(pairs.map(\.0) == ["FCGI_MPXS_CONNS", "FCGI_MAX_REQS"] && pairs.map(\.1) == ["0", "1"])
        guard case .send(let unknown)? = events(record(99, 0, [])).first else { Issue.record("no answer"); return }
        #expect(unknown == record(11, 0, [99, 0, 0, 0, 0, 0, 0, 0]))
    }

    @Test func theFilterRoleIsRefusedAndTheAuthorizerNeedsNoBody() {
        guard case .ended(let refusal, let keep)? = events(begin(1, role: 3)).first else { Issue.record("no refusal"); return }
        #expect(refusal == FastCGIRecord.endRequest(1, .unknownRole).encoded && !keep)
        let authorizer = requests(events(begin(1, role: 2) + record(4, 1, pair("REQUEST_URI", "/members/a")) + record(4, 1, [])))
        #expect(authorizer.first?.role == .authorizer && authorizer.first?.environment["REQUEST_URI"] == "/members/a")
    }

    @Test func oversizedParamsAndBodiesAreRefusedAfterTheStreamEnds() {
        let chunk = pair("X", String(repeating: "v", count: 120))
        var stream = begin(1)
        for _ in 0..<600 { stream += record(4, 1, chunk) }
        stream += record(4, 1, []) + record(5, 1, [])
        #expect(requests(events(stream)).first?.refusal?.status == 431)
        // More body than CONTENT_LENGTH and the 1 MiB kept: dropped, and refused.
        var big = begin(1) + record(4, 1, pair("CONTENT_LENGTH", "10")) + record(4, 1, [])
        let block = [UInt8](repeating: 0x61, count: 65535)
        for _ in 0..<17 { big += record(5, 1, block) }
        big += record(5, 1, [])
        let refused = requests(events(big)).first
        #expect(refused?.refusal?.status == 413 && refused?.body.isEmpty == true)
        let malformed = requests(events(begin(1) + record(4, 1, [5, 0x80, 0]) + record(4, 1, []) + record(5, 1, [])))
        #expect(malformed.first?.refusal?.status == 400)
    }

    @Test func anAbortEndsTheRequestAndAnotherVersionStopsTheStream() {
        guard case .ended(let ended, let keep)? = events(begin(7, keep: true) + record(2, 7, [])).first else { Issue.record("no end"); return }
        #expect(ended == FastCGIRecord.endRequest(7).encoded && keep)
        var reader = FastCGIRecordReader()
        reader.append([2, 1, 0, 1, 0, 0, 0, 0][...])
        #expect(throws: FastCGIRecordReader.Failure.badVersion(2)) { try reader.next() }
    }

    @Test func aLongStreamIsCutIntoRecordsOfAtMost65535Bytes() {
        var out: [UInt8] = []
        FastCGIRecord.appendStream(.stdout, requestID: 1, [UInt8](repeating: 7, count: 70_000)[...], to: &out)
        var reader = FastCGIRecordReader()
        reader.append(out[...])
        let lengths = [try? reader.next(), try? reader.next()].compactMap { $0?.content.count }
        #expect(lengths == [65535, 4465])
    }

    @Test func theURLPicksTheEndpointHoweverTheServerCutIt() {
        let config = SiteConfig(file: "/nowhere/latchkey.json")
        var nginx = ["SCRIPT_NAME": "/cgi-bin/api", "PATH_INFO": "/v1/people"]
        #expect(FastCGIWorker.route(&nginx, config: config) == "api" && nginx["PATH_INFO"] == "/v1/people")
        var apache = ["SCRIPT_NAME": "/cgi-bin/api/v1/people"]
        #expect(FastCGIWorker.route(&apache, config: config) == "api" && apache["PATH_INFO"] == "/v1/people")
        var login = ["SCRIPT_NAME": "/cgi-bin/login", "PATH_INFO": ""]
        #expect(FastCGIWorker.route(&login, config: config) == "login" && login["SCRIPT_NAME"] == "/cgi-bin/login")
        var members = ["SCRIPT_NAME": "/members", "PATH_INFO": "/a/b.mp4"]
        #expect(FastCGIWorker.route(&members, config: config) == "members" && members["PATH_INFO"] == "/a/b.mp4")
        var elsewhere = ["SCRIPT_NAME": "/other"]
        #expect(FastCGIWorker.route(&elsewhere, config: config) == nil)
    }
}
