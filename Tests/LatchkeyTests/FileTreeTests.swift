import Glibc
import Testing
@testable import LatchkeyCore

@Suite struct FileTreeTests {
    /// A fresh folder under /tmp, removed by the test that made it.
    func scratch() -> String {
        var template = Array("/tmp/latchkey-filetree-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }

    @Test func makesParentsCopiesFoldersWholeAndRemovesThem() throws {
        let root = scratch()
        defer { try? FileTree.remove(root) }
        try FileTree.makeDirectories(root + "/a/b/c")
        try FileTree.makeDirectories(root + "/a/b/c")  // already there: fine
        try FileTree.write(Array("logo".utf8), to: root + "/a/b/c/logo.svg", mode: 0o600)
        try FileTree.write(Array("css".utf8), to: root + "/a/site.css")
        #expect(symlink("site.css", root + "/a/link.css") == 0)
        #expect(symlink("gone.png", root + "/a/dangling.png") == 0)

        try FileTree.copy(root + "/a", to: root + "/copy")
        #expect(FileBytes.read(root + "/copy/b/c/logo.svg") == Array("logo".utf8))
        #expect(FileBytes.read(root + "/copy/site.css") == Array("css".utf8))
        var info = stat()
        #expect(stat(root + "/copy/b/c/logo.svg", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try FileTree.names(in: root + "/copy").sorted() == ["b", "dangling.png", "link.css", "site.css"])
        var target = [CChar](repeating: 0, count: 64)
        #expect(readlink(root + "/copy/link.css", &target, 63) == 8 && String(cString: target) == "site.css")
        #expect(FileTree.exists(root + "/copy/dangling.png"))
        #expect(mkfifo(root + "/fifo", 0o600) == 0)
        #expect(throws: CoreError.self) { try FileTree.copy(root + "/fifo", to: root + "/fifo-copy") }
        #expect(throws: CoreError.self) { try FileTree.copy(root + "/a/site.css", to: root + "/copy/site.css") }
        #expect(throws: CoreError.self) { try FileTree.write([1], to: root + "/copy/site.css", exclusive: true, flush: true) }
        #expect(FileBytes.read(root + "/copy/site.css") == Array("css".utf8), "a refused exclusive write leaves the file there alone")
        try FileTree.write(Array("flushed".utf8), to: root + "/flushed", exclusive: true, flush: true)
        #expect(FileBytes.read(root + "/flushed") == Array("flushed".utf8))

        try FileTree.move(root + "/copy", to: root + "/moved")
        #expect(!FileTree.exists(root + "/copy") && FileTree.exists(root + "/moved/b/c/logo.svg"))
        try FileTree.remove(root + "/moved")
        try FileTree.remove(root + "/moved")  // already gone: fine
        #expect(!FileTree.exists(root + "/moved"))
        #expect(throws: CoreError.self) { try FileTree.makeDirectories(root + "/a/site.css/x") }
    }
}
