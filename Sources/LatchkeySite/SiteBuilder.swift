import Glibc
import LatchkeyCore

/// `latchkey build`: renders every page of every locale into a fresh folder beside the
/// output, then swaps it in, so a live site never shows a half-written state.
public struct SiteBuilder {
    /// What a build did.
    public struct Report {
        /// Files written.
        public var files = 0
        /// Non-fatal findings, such as brand colours below WCAG AA contrast.
        public var warnings: [String] = []
        /// The published folder.
        public var output = ""
    }

    let config: SiteConfig
    let year: String

    /// A builder for `config`; `year` goes in the footer.
    public init(config: SiteConfig, year: String) {
        self.config = config
        self.year = year
    }

    /// Runs the pipeline; a failure is a `BuildError` naming the step.
    public func build() throws -> Report {
        var report = Report()
        let output = config.resolve(config.output)
        report.output = output
        try step("check paths") { try checkPaths(output: output) }
        let tables = try step("read locales") { try SiteSource.loadTables(config: config) }
        let templates = TemplateSet(folder: config.resolve(config.templates))
        report.warnings = BrandCheck.warnings(config.brand)
        let staging = output + ".building-\(getpid())"
        try? FileTree.remove(staging)
        defer { try? FileTree.remove(staging) }
        let context = PageContext(config: config, tables: tables, year: year)
        try step("render pages") {
            for table in tables {
                let folder = table.code == config.defaultLocale ? staging : staging + "/" + table.code
                for page in SitePages.names {
                    let variants: [SitePages.Message?] = [nil] + (SitePages.messages[page] ?? [])
                    for message in variants {
                        let html = try templates.renderPage(page, context.page(page, table: table, message: message))
                        try write(html, to: folder + "/" + SitePages.fileName(page, message: message?.key))
                        report.files += 1
                    }
                }
                for status in SitePages.errorStatuses {
                    // Named by its file, so the language links lead to the same error page in another language.
                    var values = context.page("error-\(status)", table: table)
                    values = values.merging(["status": .string(String(status)),
                                             "error_text": .string(table.string("errors.\(status)") ?? "")])
                    try write(try templates.renderPage("error", values), to: folder + "/error-\(status).html")
                    report.files += 1
                }
            }
            // Password managers' change-password link leads to the account settings page.
            let account = config.cgiPrefix + "account"
            try write(SiteBuilder.redirectPage(to: account), to: staging + "/.well-known/change-password/index.html")
            report.files += 1
        }
        try step("check email templates") {
            for table in tables { try EmailRenderer(templates: templates, context: context).validate(table: table) }
        }
        try step("check console templates") { try templates.parseConsole() }
        try step("copy assets") { report.files += try copyAssets(into: staging + "/assets") }
        try step("write favicon") {
            try FileTree.write(try Favicon.bytes(config), to: staging + "/favicon.ico")
            report.files += 1
        }
        try step("publish") { try publish(staging, as: output) }
        return report
    }

    private func step<T>(_ name: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as BuildError { throw error } catch {
            throw BuildError(step: name, reason: "\(error)")
        }
    }

    /// The database and key must never be served: refuse an output folder that holds them.
    private func checkPaths(output: String) throws {
        for (key, path) in [("database", config.database), ("key_file", config.keyFile)] {
            if Path.isInside(config.resolve(path), output) {
                throw CoreError.config(file: config.file, key: key, reason: "lies inside the output folder, which is served to the web")
            }
        }
        if Path.isInside(config.folder, output) {
            throw CoreError.config(file: config.file, key: "output", reason: "must not contain the site source folder")
        }
    }

    private func copyAssets(into target: String) throws -> Int {
        let source = config.resolve(config.assets)
        try FileTree.makeDirectories(target)
        var count = 0
        if FileTree.exists(source) {
            for name in try FileTree.names(in: source).sorted() where !name.hasPrefix(".") {
                try FileTree.copy(source + "/" + name, to: target + "/" + name)
                count += 1
            }
        }
        for (key, path, name) in [("brand.logo", config.brand.logo, Path.basename(config.brand.logo)),
                                  ("brand.css", config.brand.css, "custom.css")] where !path.isEmpty {
            let from = config.resolve(path), to = target + "/" + name
            guard FileTree.exists(from) else {
                throw CoreError.config(file: config.file, key: key, reason: "file not found: \(from)")
            }
            if Path.normalize(from) != Path.normalize(source + "/" + name) {
                try? FileTree.remove(to)
                try FileTree.copy(from, to: to)
                count += 1
            }
        }
        if !FileTree.exists(target + "/custom.css") { try write("", to: target + "/custom.css") }
        try write(BrandCheck.stylesheet(config.brand), to: target + "/brand.css")
        return count + 1
    }

    /// Puts `staging` where `output` is. The old folder is moved aside first and removed after,
    /// so the window without a site is two renames long and never shows a partial one.
    private func publish(_ staging: String, as output: String) throws {
        let previous = output + ".previous-\(getpid())"
        let hadOutput = FileTree.exists(output)
        if hadOutput { try FileTree.move(output, to: previous) }
        do {
            try FileTree.move(staging, to: output)
        } catch {
            if hadOutput { try? FileTree.move(previous, to: output) }
            throw error
        }
        chmod(output, 0o755)
        if hadOutput { try? FileTree.remove(previous) }
    }

    /// A page that sends the browser on to `target`; web-server snippets add a real redirect too.
    static func redirectPage(to target: String) -> String {
        let url = Escape.attribute(target)
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Change password</title>
        <meta http-equiv="refresh" content="0; url=\(url)"></head>
        <body><p><a href="\(url)">Change password</a></p></body></html>

        """
    }
}

/// Writes `text` to `path`, creating folders on the way.
func write(_ text: String, to path: String) throws {
    try FileTree.makeDirectories(Path.parent(of: path))
    try FileTree.write(Array(text.utf8), to: path)
}
