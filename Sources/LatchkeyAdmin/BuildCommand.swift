import FoundationEssentials
import LatchkeyCore
import LatchkeySite

/// `latchkey build`: render the pages, print warnings, say where they went.
enum BuildCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let config = try invocation.config()
        let report = try SiteBuilder(config: config, year: Clock.year(of: Clock.now())).build()
        for warning in report.warnings { Console.err("warning: \(warning)") }
        Console.out("Built \(report.files) files for \(config.locales.joined(separator: ", ")) into \(report.output)")
    }
}
