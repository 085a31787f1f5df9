import Glibc

/// Wall-clock time in whole Unix seconds, the unit of every timestamp in the database.
public enum Clock {
    /// Now, in Unix seconds.
    public static func now() -> Int64 { Int64(time(nil)) }

    /// Milliseconds on a clock that never jumps (for timeouts and ages, not for dates).
    public static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// The UTC calendar year of `seconds`, e.g. "2026".
    public static func year(of seconds: Int64) -> String {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        return String(parts.tm_year + 1900)
    }

    /// `2026-11-23 14:05 UTC`, for people reading the admin tool's output.
    public static func readable(_ seconds: Int64) -> String {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)) UTC"
    }

    /// `Mon, 23 Nov 2026 14:05:09 GMT` (RFC 9110's IMF-fixdate), for `Last-Modified`.
    public static func httpDate(_ seconds: Int64) -> String {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"], months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// `2026-11-23T14:05:09Z` (RFC 3339), for the API and webhook payloads.
    public static func iso8601(_ seconds: Int64) -> String {
        var t = time_t(seconds), parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
