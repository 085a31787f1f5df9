/// A QR code (ISO/IEC 18004) of a short text, for the staff console's enrolment page, where an
/// authenticator app scans the `otpauth://` address. Byte mode, error correction level M,
/// versions 1 to 10 (up to 213 bytes: an otpauth address is about 100). Not cryptography: the
/// symbol only carries the secret the page also shows as text.
///
/// Debian ships libqrencode without a static archive, and the CGIs are fully static, so the
/// encoder is here: the standard's own construction, step by step (data → Reed-Solomon blocks →
/// function patterns → zigzag placement → the mask with the lowest penalty → format bits).
public struct QRCode: Sendable {
    /// Modules per side.
    public let size: Int
    /// `modules[y][x]`: true for a dark module.
    public let modules: [[Bool]]

    /// The largest version made; its byte-mode capacity at level M is 213 bytes.
    static let maxVersion = 10
    /// Error-correction codewords per block, and blocks, at level M for versions 1–10.
    static let eccPerBlock = [10, 16, 26, 18, 24, 16, 18, 22, 22, 26]
    static let blocks = [1, 1, 1, 2, 2, 4, 4, 4, 5, 5]

    /// Encodes `text`; nil when it is longer than version 10 holds. `mask` forces one of the
    /// eight masks (for tests); by default the one with the lowest penalty is chosen.
    public init?(_ text: String, mask forced: Int? = nil) {
        let bytes = Array(text.utf8)
        guard let version = (1...QRCode.maxVersion).first(where: { QRCode.dataCapacity($0) * 8 >= QRCode.bitLength(bytes.count, $0) }) else {
            return nil
        }
        var grid = Grid(version: version)
        grid.drawFunctionPatterns()
        grid.drawCodewords(QRCode.codewords(bytes, version: version))
        var best: Grid?
        var bestPenalty = Int.max
        for mask in forced.map({ [$0] }) ?? Array(0..<8) {
            var candidate = grid
            candidate.apply(mask: mask)
            candidate.drawFormatBits(mask: mask)
            let penalty = candidate.penalty()
            if penalty < bestPenalty { best = candidate; bestPenalty = penalty }
        }
        size = grid.size
        modules = best!.dark
    }

    /// The symbol as SVG: one path of dark squares inside a four-module quiet zone.
    public func svg(title: String) -> String {
        var path = ""
        for y in 0..<size { for x in 0..<size where modules[y][x] { path += "M\(x + 4) \(y + 4)h1v1h-1z" } }
        let side = size + 8
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(side) \(side)\" role=\"img\" shape-rendering=\"crispEdges\">"
            + "<title>\(Escape.html(title))</title><rect width=\"\(side)\" height=\"\(side)\" fill=\"#fff\"/>"
            + "<path fill=\"#000\" d=\"\(path)\"/></svg>"
    }

    // MARK: data

    /// Bits of a byte-mode segment of `count` bytes: mode, character count, data.
    static func bitLength(_ count: Int, _ version: Int) -> Int { 4 + (version < 10 ? 8 : 16) + 8 * count }

    static func rawModules(_ version: Int) -> Int {
        var result = (16 * version + 128) * version + 64
        if version >= 2 {
            let align = version / 7 + 2
            result -= (25 * align - 10) * align - 55
            if version >= 7 { result -= 36 }
        }
        return result
    }

    static func dataCapacity(_ version: Int) -> Int {
        rawModules(version) / 8 - eccPerBlock[version - 1] * blocks[version - 1]
    }

    /// The data codewords, padded, split into blocks with their error correction, interleaved.
    static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        var bits: [Bool] = []
        func append(_ value: Int, _ count: Int) { for i in stride(from: count - 1, through: 0, by: -1) { bits.append(value >> i & 1 == 1) } }
        append(0b0100, 4)
        append(bytes.count, version < 10 ? 8 : 16)
        for byte in bytes { append(Int(byte), 8) }
        let capacity = dataCapacity(version) * 8
        append(0, min(4, capacity - bits.count))
        append(0, (8 - bits.count % 8) % 8)
        var data = stride(from: 0, to: bits.count, by: 8).map { start in
            bits[start..<start + 8].reduce(UInt8(0)) { $0 << 1 | ($1 ? 1 : 0) }
        }
        var pad: UInt8 = 0xEC
        while data.count < capacity / 8 { data.append(pad); pad ^= 0xEC ^ 0x11 }

        let blockCount = blocks[version - 1], eccLength = eccPerBlock[version - 1]
        let raw = rawModules(version) / 8
        let shortBlocks = blockCount - raw % blockCount, shortLength = raw / blockCount
        let divisor = ReedSolomon.divisor(degree: eccLength)
        var split: [[UInt8]] = [], ecc: [[UInt8]] = []
        var offset = 0
        for i in 0..<blockCount {
            let length = shortLength - eccLength + (i < shortBlocks ? 0 : 1)
            let block = Array(data[offset..<offset + length])
            offset += length
            split.append(block)
            ecc.append(ReedSolomon.remainder(block, divisor: divisor))
        }
        var out: [UInt8] = []
        for i in 0..<(shortLength - eccLength + 1) { for block in split where i < block.count { out.append(block[i]) } }
        for i in 0..<eccLength { for block in ecc { out.append(block[i]) } }
        return out
    }
}
