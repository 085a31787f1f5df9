extension SiteConfig {
    /// `fastcgi`: the persistent workers (`latchkey serve`, or started by the web server).
    public struct FastCGI: Sendable {
        /// `fastcgi.workers`: how many workers `latchkey serve` keeps (`--workers` overrides).
        public var workers = 4
        /// `fastcgi.max_requests`: a worker answers this many requests, then is replaced.
        public var maxRequests = 10_000
        /// `fastcgi.max_memory`: a worker whose resident size passes this (bytes; `K`, `M`, `G`
        /// suffixes in the file) is replaced after its answer.
        public var maxMemory = 256 << 20
        /// `fastcgi.read_timeout`: how long a worker waits for the next bytes of a request.
        public var readTimeout = TimeSpan(seconds: 10)

        /// The defaults.
        public init() {}
    }

    /// `members_sendfile`: how the `members` gate hands a file back to the web server.
    public enum MembersSendfile: String, Sendable, CaseIterable {
        /// The gate streams the file itself (the default; works everywhere).
        case off
        /// `X-Sendfile: PATH` (Apache `mod_xsendfile`, lighttpd `cgi.x-sendfile`).
        case xSendfile = "x-sendfile"
        /// `X-Accel-Redirect: URI` into nginx's internal members location.
        case xAccelRedirect = "x-accel-redirect"
    }

    /// nginx's internal location over `members_dir`, where the gate's `X-Accel-Redirect` points.
    public static let membersInternalPath = "/_latchkey_members/"

    static func loadFastCGI(_ root: ConfigReader, into config: inout SiteConfig) throws {
        let fastcgi = try root.object("fastcgi")
        try fastcgi.allow(["workers", "max_requests", "max_memory", "read_timeout"])
        config.fastcgi.workers = try fastcgi.int("workers", default: config.fastcgi.workers, range: 1...256)
        config.fastcgi.maxRequests = try fastcgi.int("max_requests", default: config.fastcgi.maxRequests, range: 1...100_000_000)
        let memory = try fastcgi.string("max_memory", default: "") { SiteConfig.bytes($0) != nil }
            reason: { "must be a size like 256M or 1G (at least 1M)" }
        if !memory.isEmpty, let bytes = SiteConfig.bytes(memory) { config.fastcgi.maxMemory = bytes }
        config.fastcgi.readTimeout = try fastcgi.span("read_timeout", default: config.fastcgi.readTimeout)
        let sendfile = try root.string("members_sendfile", default: "off") { MembersSendfile(rawValue: $0) != nil }
            reason: { "must be off, x-sendfile or x-accel-redirect" }
        config.membersSendfile = MembersSendfile(rawValue: sendfile) ?? .off
    }

    /// `text` as a byte count: digits with an optional `K`, `M` or `G`; nil below 1 MiB or malformed.
    static func bytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text)
        var unit = 1
        if let last = digits.last, let scale = units[last] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.count <= 12, let number = Int(digits), number > 0 else { return nil }
        let value = number * unit
        return value >= 1 << 20 ? value : nil
    }
}
