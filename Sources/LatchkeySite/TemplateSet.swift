import LatchkeyCore

/// The site's templates folder: `pages/`, `partials/`, `email/`, `email/partials/`, `admin/`
/// and `admin/partials/`,
/// each file parsed once and kept.
public final class TemplateSet {
    /// The templates folder.
    public let folder: String
    private var cache: [String: Template] = [:]

    /// Templates under `folder`.
    public init(folder: String) { self.folder = folder }

    /// `pages/NAME.html`.
    public func page(_ name: String) throws -> Template { try load("pages/" + name + ".html") }

    /// `email/NAME.EXT`, where EXT is `txt` or `html`.
    public func email(_ name: String, _ ext: String) throws -> Template { try load("email/" + name + "." + ext) }

    /// Renders a page template; its partials come from `partials/`.
    public func renderPage(_ name: String, _ context: TemplateValue) throws -> String {
        try page(name).render(context) { [unowned self] partial in try self.load("partials/" + partial + ".html", optional: true) }
    }

    /// Renders a staff console page, `admin/NAME.html`; its partials come from `admin/partials/`.
    public func renderConsole(_ name: String, _ context: TemplateValue) throws -> String {
        try load("admin/" + name + ".html").render(context) { [unowned self] partial in
            try self.load("admin/partials/" + partial + ".html", optional: true)
        }
    }

    /// Parses every staff console template (`admin/` and `admin/partials/`), so a broken one
    /// fails `latchkey build` rather than the console's next request. A site without a console
    /// folder has nothing to check.
    public func parseConsole() throws {
        for folder in ["admin", "admin/partials"] where FileTree.exists(Path.join(self.folder, folder)) {
            for name in try FileTree.names(in: Path.join(self.folder, folder)).sorted() where name.hasSuffix(".html") {
                _ = try load(folder + "/" + name)
            }
        }
    }

    /// Renders an email template; its partials come from `email/partials/` with the same extension.
    public func renderEmail(_ name: String, _ ext: String, _ context: TemplateValue) throws -> String {
        try email(name, ext).render(context) { [unowned self] partial in
            try self.load("email/partials/" + partial + "." + ext, optional: true)
        }
    }

    private func load(_ relative: String, optional: Bool = false) throws -> Template? {
        if let cached = cache[relative] { return cached }
        let path = Path.join(folder, relative)
        guard let data = FileBytes.read(path) else {
            if optional { return nil }
            throw CoreError.file(path: path, reason: "template not found")
        }
        guard let source = String(validating: data, as: UTF8.self) else {
            throw CoreError.template(file: path, line: 1, reason: "not valid UTF-8")
        }
        let template = try Template(source: source, name: path)
        cache[relative] = template
        return template
    }

    private func load(_ relative: String) throws -> Template {
        try load(relative, optional: false)!
    }
}
