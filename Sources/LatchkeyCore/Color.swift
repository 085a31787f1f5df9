import Glibc

/// An sRGB colour from `#rgb` or `#rrggbb`, with the WCAG contrast arithmetic.
public struct Color: Equatable, Sendable {
    /// The sRGB channels, each from 0 to 1.
    public let red: Double, green: Double, blue: Double

    /// Parses `#rgb` or `#rrggbb`; nil for anything else.
    public init?(hex: String) {
        // On bytes: every valid spelling is ASCII.
        var digits = Array(hex.utf8)
        guard digits.first == UInt8(ascii: "#") else { return nil }
        digits.removeFirst()
        if digits.count == 3 { digits = digits.flatMap { [$0, $0] } }
        guard digits.count == 6 else { return nil }
        var value: UInt32 = 0
        for digit in digits {
            guard let nibble = Color.hexValue(digit) else { return nil }
            value = value << 4 | nibble
        }
        red = Double((value >> 16) & 0xff) / 255
        green = Double((value >> 8) & 0xff) / 255
        blue = Double(value & 0xff) / 255
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// WCAG 2 relative luminance.
    public var luminance: Double {
        func channel(_ c: Double) -> Double { c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)
    }

    /// WCAG 2 contrast ratio between two colours, from 1 to 21.
    public func contrast(with other: Color) -> Double {
        let (a, b) = (luminance + 0.05, other.luminance + 0.05)
        return max(a, b) / min(a, b)
    }

    /// Black or white, whichever reads better on this colour.
    public var readableText: String {
        contrast(with: Color(hex: "#ffffff")!) >= contrast(with: Color(hex: "#111827")!) ? "#ffffff" : "#111827"
    }

    /// WCAG AA's bar for normal text.
    public static let minimumContrast = 4.5
}
