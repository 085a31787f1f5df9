import Glibc

/// The few folder operations `latchkey build` and Maildir delivery need, with plain POSIX
/// calls: `FileManager` would link Foundation and libdispatch into every CGI, whose start-up
/// then pays for initialising them.
public enum FileTree {
    /// True when something exists at `path` (a dangling symlink counts).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` and any missing parents, like `mkdir -p` (modes left to the umask).
    public static func makeDirectories(_ path: String) throws {
        let path = Path.absolute(path)
        if isDirectory(path) { return }
        let parent = Path.parent(of: path)
        if parent != path { try makeDirectories(parent) }
        guard mkdir(path, 0o777) == 0 || (errno == EEXIST && isDirectory(path)) else {
            throw failure("cannot create folder", path)
        }
    }

    /// True when `path` is a folder, or a symlink to one.
    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in folder `path`, without `.` and `..`, in no particular order.
    public static func names(in path: String) throws -> [String] {
        guard let folder = opendir(path) else { throw failure("cannot read folder", path) }
        defer { closedir(folder) }
        var names: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Copies the file, folder or symlink at `source` to `target`, which must not exist: folders
    /// whole, symlinks as symlinks, modes kept. Anything else (a device, a FIFO) is refused.
    public static func copy(_ source: String, to target: String) throws {
        var info = stat()
        guard lstat(source, &info) == 0 else { throw failure("cannot read", source) }
        let mode = info.st_mode & 0o7777
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            // Owner-writable while it fills, its own mode once full (a read-only folder copies too).
            guard mkdir(target, 0o700) == 0 else { throw failure("cannot create folder", target) }
            for name in try names(in: source) { try copy(source + "/" + name, to: target + "/" + name) }
            guard chmod(target, mode) == 0 else { throw failure("cannot set the mode of", target) }
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(source, &buffer, buffer.count - 1)
            guard length >= 0 else { throw failure("cannot read link", source) }
            guard symlink(buffer, target) == 0 else { throw failure("cannot create link", target) }
        case S_IFREG:
            guard let bytes = FileBytes.read(source, limit: Int.max) else { throw failure("cannot read", source) }
            try write(bytes, to: target, mode: mode, exclusive: true)
        default:
            throw CoreError.file(path: source, reason: "cannot copy: not a file, folder or symlink")
        }
    }

    /// Removes `path`, and everything in it when it is a folder; nothing there is not an error.
    public static func remove(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try names(in: path) { try remove(path + "/" + name) }
            guard rmdir(path) == 0 else { throw failure("cannot remove folder", path) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw failure("cannot remove", path) }
        }
    }

    /// Renames `source` to `target` (same file system).
    public static func move(_ source: String, to target: String) throws {
        guard rename(source, target) == 0 else { throw failure("cannot move \(source) to", target) }
    }

    /// Writes `bytes` to the file at `path`, replacing it unless `exclusive`; a new file gets
    /// `mode` less the umask. `flush` syncs it to disk before closing. An exclusive write that
    /// fails removes the file it created, and only that one.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o666, exclusive: Bool = false,
                             flush: Bool = false) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode)
        guard fd >= 0 else { throw failure("cannot write", path) }
        func fail(_ what: String) -> CoreError {
            let error = failure(what, path)
            close(fd)
            if exclusive { unlink(path) }
            return error
        }
        var remaining = bytes[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw fail("cannot write") }
            remaining = remaining.dropFirst(written)
        }
        if flush && fsync(fd) != 0 { throw fail("cannot flush") }
        guard close(fd) == 0 else {
            let error = failure("cannot write", path)
            if exclusive { unlink(path) }
            throw error
        }
    }

    private static func failure(_ what: String, _ path: String) -> CoreError {
        .file(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
}
