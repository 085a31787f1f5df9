import Glibc
import Testing
@testable import LatchkeyAccounts

@Suite struct WorkQueueTests {
    func scratchQueue() -> WorkQueue {
        var template = Array("/tmp/latchkey-queue-XXXXXX".utf8CString)
        let folder = String(cString: mkdtemp(&template))
        return WorkQueue(database: folder + "/latchkey.sqlite3")
    }

    @Test func jobsRoundTripThroughTheirFileForm() {
        for work in [AfterResponse.forgot(email: "a@b.co", locale: "fr", remoteAddr: "127.0.0.1"), .deliver([1, 22, 333])] {
            #expect(AfterResponse(encoded: work.encoded) == work)
        }
        for bad in ["rm -rf", "forgot\ta@b.co", "deliver", ""] { #expect(AfterResponse(encoded: bad) == nil, "\(bad)") }
    }

    @Test func jobsWaitOldestFirstAndHalfWrittenOnesAreNotSeen() throws {
        let queue = scratchQueue()
        #expect(queue.pending().isEmpty)
        try queue.add(.deliver([1]))
        try queue.add(.deliver([2]))
        close(open(queue.folder + "/.half-written", O_CREAT | O_WRONLY, 0o600))
        let names = queue.pending()
        #expect(names.count == 2)
        let first = String(decoding: FileBytesProbe.read(queue.folder + "/" + names[0]), as: UTF8.self)
        #expect(first == "deliver\t1\n")
    }

    @Test func aJournalPastItsLimitGivesWayToANewOneAndLetsGoOfTheOld() throws {
        let queue = scratchQueue()
        let journal = try #require(WorkJournal(queue: queue))
        let work = AfterResponse.forgot(email: "someone@example.com", locale: "en", remoteAddr: "127.0.0.1")
        let lineSize = work.encoded.utf8.count + 1
        let filling = (WorkJournal.rotateAt + lineSize - 1) / lineSize
        for _ in 0..<filling { #expect(journal.append(work)) }
        #expect(WorkJournal.names(in: queue).count == 1)
        #expect(journal.append(work))
        let names = WorkJournal.names(in: queue)
        #expect(names.count == 2)
        // The old journal's writer has let go of it (a drainer may remove it once worked); not of the new one.
        var free = 0
        for name in names {
            let fd = open(queue.folder + "/" + name, O_RDONLY)
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { free += 1 }
            close(fd)
        }
        #expect(free == 1)
        #expect(queue.waiting() == filling + 1)
    }

    @Test func onlyOneDrainerHoldsTheLock() throws {
        let queue = scratchQueue()
        try queue.add(.deliver([]))
        let first = try #require(queue.tryLock())
        #expect(queue.tryLock() == nil)
        close(first)
        let again = try #require(queue.tryLock())
        close(again)
    }
}

/// Reads a file for the assertions above, independently of the code under test.
enum FileBytesProbe {
    static func read(_ path: String) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        while case let c = fgetc(file), c != EOF { bytes.append(UInt8(c)) }
        return bytes
    }
}
