import Glibc

/// An sRGB colour from `#rgb` or `#rrggbb`, with the WCAG contrast arithmetic.
public struct Color: Equatable, Sendable {
    /// The sRGB channels, each from 0 to 1.
    public let red: Double, green: Double, blue: Double

    /// Parses `#rgb` or `#rrggbb`; nil for anything else.
    public init?(hex: String) {
        guard hex.hasPrefix("#") else { return nil }
        var digits = String(hex.dropFirst())
        if digits.count == 3 { digits = digits.map { "\($0)\($0)" }.joined() }
        guard digits.count == 6, let value = UInt32(digits, radix: 16) else { return nil }
        red = Double((value >> 16) & 0xff) / 255
        green = Double((value >> 8) & 0xff) / 255
        blue = Double(value & 0xff) / 255
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
