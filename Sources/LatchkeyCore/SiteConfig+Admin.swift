import Glibc

extension SiteConfig {
    /// `admin`: the staff console's timeouts, throttles and who may reach it.
    public struct Admin: Sendable {
        /// `admin.idle_timeout`: a staff session unused this long ends (OWASP ASVS 3.3.2).
        public var idleTimeout = TimeSpan(seconds: 30 * 60)
        /// `admin.absolute_timeout`: no staff session lives longer.
        public var absoluteTimeout = TimeSpan(seconds: 12 * 3600)
        /// `admin.step_up_window`: a code given this recently covers the sensitive actions.
        public var stepUpWindow = TimeSpan(seconds: 5 * 60)
        /// `admin.allow_from`: client address ranges that may reach the console; empty for all.
        public var allowFrom: [CIDR] = []
        /// `admin.login_failures_per_account`: failed console logins per staff account.
        public var loginFailuresPerAccount = Limit(count: 5, window: TimeSpan(seconds: 900))
        /// `admin.login_failures_per_ip`: failed console logins per client address.
        public var loginFailuresPerIP = Limit(count: 20, window: TimeSpan(seconds: 900))

        /// True when `address` may reach the console.
        public func allows(_ address: String) -> Bool {
            allowFrom.isEmpty || allowFrom.contains { $0.contains(address) }
        }
    }

    static func loadAdmin(_ root: ConfigReader, into config: inout SiteConfig) throws {
        let admin = try root.object("admin")
        try admin.allow(["idle_timeout", "absolute_timeout", "step_up_window", "allow_from", "login_failures_per_account", "login_failures_per_ip"])
        config.admin.idleTimeout = try admin.span("idle_timeout", default: config.admin.idleTimeout)
        config.admin.absoluteTimeout = try admin.span("absolute_timeout", default: config.admin.absoluteTimeout)
        config.admin.stepUpWindow = try admin.span("step_up_window", default: config.admin.stepUpWindow)
        config.admin.allowFrom = try admin.strings("allow_from", default: []).map { text in
            guard let range = CIDR(text) else { throw admin.error("allow_from", "'\(text)' is not an address range like 10.0.0.0/8 or 2001:db8::/32") }
            return range
        }
        config.admin.loginFailuresPerAccount = try admin.limit("login_failures_per_account", default: config.admin.loginFailuresPerAccount)
        config.admin.loginFailuresPerIP = try admin.limit("login_failures_per_ip", default: config.admin.loginFailuresPerIP)
    }
}

/// An IPv4 or IPv6 address range, `ADDRESS/BITS` (a bare address is one host).
public struct CIDR: Sendable, Equatable {
    let network: [UInt8]
    let bits: Int

    /// Parses `text`; nil when it is not a range.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = CIDR.bytes(String(parts[0])) else { return nil }
        let bits = parts.count == 2 ? Int(parts[1]) : address.count * 8
        guard let bits, (0...(address.count * 8)).contains(bits) else { return nil }
        network = address
        self.bits = bits
    }

    /// True when `address` lies in the range (an IPv4 range never holds an IPv6 address).
    public func contains(_ address: String) -> Bool {
        guard let other = CIDR.bytes(address), other.count == network.count else { return false }
        for bit in 0..<bits where (other[bit / 8] ^ network[bit / 8]) & (0x80 >> UInt8(bit % 8)) != 0 { return false }
        return true
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
