import FoundationEssentials
import Glibc
import LatchkeyCore
import LatchkeyStore

/// `latchkey init [DIR]`: a site folder with the default theme, a secret key and an empty database.
enum InitCommand {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow([])
        let folder = Path.absolute(invocation.rest.first ?? "site")
        let fm = FileManager.default
        let configFile = folder + "/latchkey.json"
        if fm.fileExists(atPath: configFile) {
            throw CommandError("\(configFile) already exists: \(folder) already holds a site; nothing changed")
        }
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in DefaultSite.files {
            let path = folder + "/" + file.path
            try fm.createDirectory(atPath: Path.parent(of: path), withIntermediateDirectories: true)
            guard fm.createFile(atPath: path, contents: Data(file.contents.utf8)) else {
                throw CommandError("cannot write \(path)")
            }
        }
        let config = try SiteConfig.load(file: configFile)
        let keyPath = config.resolve(config.keyFile)
        try fm.createDirectory(atPath: Path.parent(of: keyPath), withIntermediateDirectories: true)
        try writeKey(SiteKey.generate(), to: keyPath)
        let databasePath = config.resolve(config.database)
        try fm.createDirectory(atPath: Path.parent(of: databasePath), withIntermediateDirectories: true)
        try Database.open(path: databasePath, create: true).migrate()
        Console.out("""
        Created a site in \(folder)
          config    \(configFile)
          key       \(keyPath) (mode 0600: keep it secret, back it up)
          database  \(databasePath)
        Next: edit latchkey.json, then run `latchkey build --config \(configFile)`.
        """)
    }

    /// Creates the key file with mode 0600 from the start: it never exists with wider permissions.
    static func writeKey(_ key: SiteKey, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw CommandError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let text = Array(key.fileText.utf8)
        guard Glibc.write(fd, text, text.count) == text.count, fsync(fd) == 0 else {
            throw CommandError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
