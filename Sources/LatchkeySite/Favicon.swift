import LatchkeyCore

/// `favicon.ico` at the output's root. Browsers ask for it on every page that names no icon,
/// members pages a site owner wrote among them, and log a 404 when it is missing.
///
/// The file holds what `brand.favicon` (by default the logo) is, in a form a browser decodes
/// at that path: an `.ico` as it is; a PNG inside an ICO container (an icon directory of one
/// PNG entry, which every current browser reads); an SVG as it is, which the web-server configs
/// Latchkey prints serve as `image/svg+xml` (browsers decode an icon by its type, and an SVG
/// cannot become a bitmap without a rasterizer). With no logo in one of those formats, a plain
/// square in the primary colour.
public enum Favicon {
    /// Largest icon source read: icons are a few KiB; a multi-megabyte one is a mistake.
    static let maxSourceBytes = 1 << 20

    /// The bytes of `favicon.ico` for `brand`, reading the source relative to `config`.
    public static func bytes(_ config: SiteConfig) throws -> [UInt8] {
        let source = config.brand.faviconSource
        guard !source.isEmpty else { return Array(placeholder(color: config.brand.primaryColor).utf8) }
        let path = config.resolve(source)
        guard let bytes = FileBytes.read(path, limit: maxSourceBytes) else {
            throw CoreError.config(file: config.file, key: config.brand.favicon.isEmpty ? "brand.logo" : "brand.favicon",
                                   reason: "cannot read \(path) (a file of at most 1 MiB)")
        }
        switch SiteConfig.Brand.FaviconKind(path: source) ?? .svg {
        case .ico:
            guard bytes.starts(with: [0, 0, 1, 0]) else { throw notA("ICO", path, config) }
            return bytes
        case .png:
            guard bytes.count > 24, bytes.starts(with: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) else { throw notA("PNG", path, config) }
            return ico(wrapping: bytes)
        case .svg:
            return bytes
        }
    }

    /// An icon directory holding one PNG image: 6 bytes of header, one 16-byte entry, the PNG.
    static func ico(wrapping png: [UInt8]) -> [UInt8] {
        // Width and height are big-endian at bytes 16 and 20 of the PNG (its IHDR chunk); an ICO
        // entry stores them in one byte each, 0 meaning 256 or more.
        func side(_ offset: Int) -> UInt8 {
            let value = png[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            return value >= 256 ? 0 : UInt8(value)
        }
        var out: [UInt8] = [0, 0, 1, 0, 1, 0]
        out += [side(16), side(20), 0, 0, 1, 0, 32, 0]
        out += littleEndian(UInt32(png.count)) + littleEndian(22)
        return out + png
    }

    static func littleEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)]
    }

    /// A rounded square in the site's primary colour.
    static func placeholder(color: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="\(Escape.attribute(color))"/></svg>

        """
    }

    static func notA(_ format: String, _ path: String, _ config: SiteConfig) -> CoreError {
        CoreError.config(file: config.file, key: config.brand.favicon.isEmpty ? "brand.logo" : "brand.favicon",
                         reason: "\(path) is not a \(format) file")
    }
}
