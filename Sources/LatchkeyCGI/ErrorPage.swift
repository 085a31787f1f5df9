import LatchkeyCore

/// The branded error pages `latchkey build` rendered, with a plain fallback for when the
/// config itself could not be read.
enum ErrorPage {
    /// The answer for `error` in `locale`.
    static func response(_ error: HTTPError, locale: String?, config: SiteConfig?) -> CGIResponse {
        let status = SitePages.errorStatuses.contains(error.status) ? error.status : (error.status >= 500 ? 500 : 400)
        var html: String?
        if let config {
            let code = locale.flatMap { config.locales.contains($0) ? $0 : nil } ?? config.defaultLocale
            let folder = config.resolve(config.output) + (code == config.defaultLocale ? "" : "/" + code)
            html = FileBytes.read(folder + "/error-\(status).html").map { String(decoding: $0, as: UTF8.self) }
        }
        let fallback = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(error.status) \(CGIResponse.reason(error.status))</title></head><body><h1>\(error.status) \(CGIResponse.reason(error.status))</h1></body></html>\n"
        return .page(status: error.status, html: html ?? fallback, headers: error.headers)
    }
}
