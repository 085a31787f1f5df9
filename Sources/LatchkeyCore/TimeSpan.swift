/// A length of time written the way site owners write it: `90s`, `30m`, `24h`, `7d`.
public struct TimeSpan: Equatable, Comparable, Sendable, CustomStringConvertible {
    /// The length in whole seconds.
    public let seconds: Int64

    /// A span of `seconds` seconds.
    public init(seconds: Int64) { self.seconds = seconds }

    /// Parses `90s`, `30m`, `24h` or `7d`; nil for anything else, zero or negative.
    public init?(_ text: String) {
        // The unit is one ASCII letter, so the last byte is the last character.
        guard let unit = text.utf8.last, let count = Int64(Substring(text.utf8.dropLast())), count > 0,
              count < 100_000 else { return nil }
        switch unit {
        case UInt8(ascii: "s"): seconds = count
        case UInt8(ascii: "m"): seconds = count * 60
        case UInt8(ascii: "h"): seconds = count * 3600
        case UInt8(ascii: "d"): seconds = count * 86400
        default: return nil
        }
    }

    /// The spelling people use, e.g. `24h`, `7d`.
    public var description: String {
        let (count, unit) = largestUnit
        return "\(count)\(unit.first!)"
    }

    /// The largest whole unit and its count, for human text like "7 days"; a single day
    /// reads as "24 hours", the way reset links are usually described.
    public var largestUnit: (count: Int64, unit: String) {
        if seconds % 86400 == 0 && seconds > 86400 { return (seconds / 86400, "day") }
        if seconds % 3600 == 0 { return (seconds / 3600, "hour") }
        if seconds % 60 == 0 { return (seconds / 60, "minute") }
        return (seconds, "second")
    }

    /// Shorter spans sort first.
    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.seconds < b.seconds }
}
