extension QRCode {
    /// The module grid while a symbol is made: which modules are dark, and which belong to
    /// function patterns (finders, timing, alignment, format and version areas) that data and
    /// masks leave alone.
    struct Grid: Sendable {
        let version: Int
        let size: Int
        var dark: [[Bool]]
        var function: [[Bool]]

        init(version: Int) {
            self.version = version
            size = version * 4 + 17
            dark = Array(repeating: Array(repeating: false, count: size), count: size)
            function = dark
        }

        mutating func set(_ x: Int, _ y: Int, _ value: Bool) {
            dark[y][x] = value
            function[y][x] = true
        }

        mutating func drawFunctionPatterns() {
            for i in 0..<size {
                set(6, i, i % 2 == 0)
                set(i, 6, i % 2 == 0)
            }
            for (x, y) in [(3, 3), (size - 4, 3), (3, size - 4)] { drawFinder(x, y) }
            let positions = alignmentPositions()
            let last = positions.count - 1
            for (i, x) in positions.enumerated() {
                for (j, y) in positions.enumerated() where !(i == 0 && j == 0 || i == 0 && j == last || i == last && j == 0) {
                    for dy in -2...2 { for dx in -2...2 { set(x + dx, y + dy, max(abs(dx), abs(dy)) != 1) } }
                }
            }
            drawFormatBits(mask: 0)  // reserves the area; drawn again once the mask is chosen
            if version >= 7 {
                var remainder = version
                for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
                let bits = version << 12 | remainder
                for i in 0..<18 {
                    let bit = bits >> i & 1 == 1, a = size - 11 + i % 3, b = i / 3
                    set(a, b, bit)
                    set(b, a, bit)
                }
            }
        }

        mutating func drawFinder(_ x: Int, _ y: Int) {
            for dy in -4...4 {
                for dx in -4...4 {
                    let distance = max(abs(dx), abs(dy)), xx = x + dx, yy = y + dy
                    if (0..<size).contains(xx) && (0..<size).contains(yy) { set(xx, yy, distance != 2 && distance != 4) }
                }
            }
        }

        func alignmentPositions() -> [Int] {
            guard version > 1 else { return [] }
            let count = version / 7 + 2
            let step = (version * 4 + count * 2 + 1) / (count * 2 - 2) * 2
            var result: [Int] = []
            var position = size - 7
            for _ in 0..<(count - 1) { result.insert(position, at: 0); position -= step }
            return [6] + result
        }

        /// Level M (format bits 00) with `mask`, BCH-protected, in both copies, and the dark module.
        mutating func drawFormatBits(mask: Int) {
            let data = mask
            var remainder = data
            for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
            let bits = (data << 10 | remainder) ^ 0x5412
            func bit(_ i: Int) -> Bool { bits >> i & 1 == 1 }
            for i in 0...5 { set(8, i, bit(i)) }
            set(8, 7, bit(6))
            set(8, 8, bit(7))
            set(7, 8, bit(8))
            for i in 9..<15 { set(14 - i, 8, bit(i)) }
            for i in 0..<8 { set(size - 1 - i, 8, bit(i)) }
            for i in 8..<15 { set(8, size - 15 + i, bit(i)) }
            set(8, size - 8, true)
        }

        /// Places the codewords' bits in the two-column zigzag from the bottom right.
        mutating func drawCodewords(_ data: [UInt8]) {
            var i = 0
            var right = size - 1
            while right >= 1 {
                if right == 6 { right = 5 }
                for vertical in 0..<size {
                    for j in 0..<2 {
                        let x = right - j
                        let upward = (right + 1) & 2 == 0
                        let y = upward ? size - 1 - vertical : vertical
                        if !function[y][x] && i < data.count * 8 {
                            dark[y][x] = data[i >> 3] >> (7 - i & 7) & 1 == 1
                            i += 1
                        }
                    }
                }
                right -= 2
            }
        }

        mutating func apply(mask: Int) {
            for y in 0..<size {
                for x in 0..<size where !function[y][x] {
                    let flip = switch mask {
                    case 0: (x + y) % 2 == 0
                    case 1: y % 2 == 0
                    case 2: x % 3 == 0
                    case 3: (x + y) % 3 == 0
                    case 4: (x / 3 + y / 2) % 2 == 0
                    case 5: x * y % 2 + x * y % 3 == 0
                    case 6: (x * y % 2 + x * y % 3) % 2 == 0
                    default: ((x + y) % 2 + x * y % 3) % 2 == 0
                    }
                    if flip { dark[y][x].toggle() }
                }
            }
        }

        /// The standard's penalty: long runs, 2×2 blocks, finder-like runs, and imbalance.
        func penalty() -> Int {
            var total = 0
            let finderLike: [Bool] = [true, false, true, true, true, false, true, false, false, false, false]
            for horizontal in [true, false] {
                for a in 0..<size {
                    var line: [Bool] = []
                    for b in 0..<size { line.append(horizontal ? dark[a][b] : dark[b][a]) }
                    var run = 1
                    for b in 1..<size {
                        if line[b] == line[b - 1] { run += 1 } else { if run >= 5 { total += run - 2 }; run = 1 }
                    }
                    if run >= 5 { total += run - 2 }
                    if size >= 11 {
                        for b in 0...(size - 11) {
                            let window = Array(line[b..<b + 11])
                            if window == finderLike || window == finderLike.reversed() { total += 40 }
                        }
                    }
                }
            }
            for y in 0..<(size - 1) {
                for x in 0..<(size - 1) where dark[y][x] == dark[y][x + 1] && dark[y][x] == dark[y + 1][x] && dark[y][x] == dark[y + 1][x + 1] {
                    total += 3
                }
            }
            let darkCount = dark.reduce(0) { $0 + $1.filter { $0 }.count }
            let cells = size * size
            total += ((abs(darkCount * 20 - cells * 10) + cells - 1) / cells - 1) * 10
            return total
        }
    }

    /// Reed-Solomon error correction over GF(256) with the QR polynomial x⁸+x⁴+x³+x²+1.
    enum ReedSolomon {
        /// The generator polynomial of `degree`, highest coefficient (always 1) left out.
        static func divisor(degree: Int) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: degree)
            result[degree - 1] = 1
            var root: UInt8 = 1
            for _ in 0..<degree {
                for j in 0..<degree {
                    result[j] = multiply(result[j], root)
                    if j + 1 < degree { result[j] ^= result[j + 1] }
                }
                root = multiply(root, 0x02)
            }
            return result
        }

        /// The error-correction codewords of `data`.
        static func remainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: divisor.count)
            for byte in data {
                let factor = byte ^ result.removeFirst()
                result.append(0)
                for i in 0..<result.count { result[i] ^= multiply(divisor[i], factor) }
            }
            return result
        }

        static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
            var z = 0
            for i in stride(from: 7, through: 0, by: -1) {
                z = (z << 1) ^ ((z >> 7) * 0x11D)
                z ^= Int(y >> i & 1) * Int(x)
            }
            return UInt8(z)
        }
    }
}
