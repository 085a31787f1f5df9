import Glibc
import LatchkeyCore

/// `GET members/…`: the gate in front of the members area under Apache and lighttpd. Serves
/// files from `members_dir`, which lies outside the document root, only to a session that
/// admits members; anyone else is sent to log in, with the page they wanted remembered for
/// afterwards. Files of any size are streamed, with byte ranges and validators, so a lesson
/// video seeks and a large download resumes (`MembersFile`).
enum MembersEndpoint {
    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "css": "text/css", "js": "text/javascript", "svg": "image/svg+xml",
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "avif": "image/avif",
        "ico": "image/x-icon", "pdf": "application/pdf", "txt": "text/plain; charset=utf-8", "json": "application/json",
        "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "ogv": "video/ogg",
        "m3u8": "application/vnd.apple.mpegurl", "ts": "video/mp2t", "mpd": "application/dash+xml", "m4s": "video/iso.segment",
        "mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg", "wav": "audio/wav", "vtt": "text/vtt; charset=utf-8",
        "zip": "application/zip", "epub": "application/epub+zip", "woff2": "font/woff2", "woff": "font/woff",
    ]

    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["GET", "HEAD"])
        let config = context.config
        let relative = String(context.request.pathInfo.drop { $0 == "/" })
        if let refused = SessionCookie.refuseMembers(try SessionCookie.live(context), then: config.membersPath + relative, context) {
            return refused
        }
        if context.request.pathInfo.isEmpty {
            return Reply(.redirect(to: config.origin + config.membersPath))
        }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0.hasPrefix(".") }), !relative.hasControlCharacters, !relative.includes("\\") else {
            throw HTTPError(404, "refused members path \(relative.prefix(80))")
        }
        let folder = config.resolve(config.membersDir)
        var path = Path.join(folder, relative)
        var info = stat()
        if relative.isEmpty || relative.hasSuffix("/") || (stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR) {
            path += "/index.html"
        }
        guard Path.isInside(path, folder), let file = MembersFile(path: path) else {
            throw HTTPError(404, "no members file \(relative.prefix(80))")
        }
        let type = types[String(path.split(separator: ".").last ?? "").lowercased()] ?? "application/octet-stream"
        var response: CGIResponse
        switch config.membersSendfile {
        case .off:
            response = file.response(context.request, type: type)
        case .xSendfile:
            // The server reads the file itself, with its own ranges and validators.
            response = CGIResponse(status: 200, headers: [("Content-Type", type), ("X-Sendfile", path)])
        case .xAccelRedirect:
            let inside = String(path.dropFirst(folder.count).drop { $0 == "/" })
            let uri = SiteConfig.membersInternalPath
                + inside.split(separator: "/", omittingEmptySubsequences: false).map { Escape.urlComponent(String($0)) }.joined(separator: "/")
            response = CGIResponse(status: 200, headers: [("Content-Type", type), ("X-Accel-Redirect", uri)])
        }
        // As nginx serves them: never kept by a shared cache, nor on a shared computer after a
        // logout. The validators still answer a client that asks (players, download managers).
        response.headers.append(("Cache-Control", "private, no-store"))
        response.isPage = false
        return Reply(response)
    }
}
