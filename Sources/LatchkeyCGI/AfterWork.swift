import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail

/// Work left for after an answer: queued (a job file, or a line of a FastCGI worker's journal),
/// then worked by one detached drainer per site.
extension CGIApp {
    /// Queues `work`, then forks a drainer unless one is already at work (it will find the job).
    /// What cannot be queued is done here, late but not lost.
    static func queueAfterResponse(_ work: AfterResponse, config: SiteConfig) {
        guard enqueue(work, config: config) else { return workInline(work, config: config) }
        startDrainer(config: config)
    }

    /// Stores `work` in the queue: appended to `journal` (a FastCGI worker's), else as a job
    /// file of its own. False when neither could be written (the caller then works it inline).
    static func enqueue(_ work: AfterResponse, config: SiteConfig, journal: WorkJournal? = nil) -> Bool {
        if journal?.append(work) == true { return true }
        do {
            try WorkQueue(database: config.resolve(config.database)).add(work)
            return true
        } catch {
            log("after-response", "error", "\(error); working inline")
            return false
        }
    }

    /// Does `work` in this process, when it could not be queued.
    static func workInline(_ work: AfterResponse, config: SiteConfig) {
        do {
            let services = try Services(config: config)
            WorkQueue.deliver(try WorkQueue.perform(work, services: services), services: services)
        } catch {
            log("after-response", "error", "\(error)")
        }
    }

    /// Forks a drainer for the queue unless one is at work. The drainer runs in its own session
    /// with /dev/null for input and output, because Apache waits for every process holding the
    /// CGI's pipes; its errors go beside the database, since nobody reads a detached process's
    /// stderr. When it cannot fork, the queue is drained here.
    /// A FastCGI worker passes its `connection` and `journal`, which the drainer closes (the
    /// connection is the server's, and holding the journal's lock would keep it from ever being
    /// removed), and `beforeFork`, run only when a drainer is about to be forked.
    static func startDrainer(config: SiteConfig, connection: Int32? = nil, journal: WorkJournal? = nil,
                             beforeFork: () -> Void = {}) {
        let queue = WorkQueue(database: config.resolve(config.database))
        let report = { (message: String) in log("after-response", "error", message) }
        guard let lock = queue.tryLock() else { return }
        beforeFork()
        do {
            guard try Subprocess.forkDetached(errorLog: workerLog(config)) == .child else {
                close(lock)
                return
            }
            if let connection { close(connection) }
            if let journal { close(journal.descriptor) }
            let failures = queue.drain(lock: lock, config: config, linger: 100, report: report)
            // Events are sent once the queue is empty and its lock given up, so a new request's
            // mail gets a drainer of its own and never waits behind a slow receiver.
            WebhookSender.sendAll(config: config, report: report)
            exit(failures == 0 ? 0 : 1)
        } catch {
            report("cannot fork (\(error)); draining inline")
            queue.drain(lock: lock, config: config, report: report)
        }
    }

    /// Where work done after the answer logs, since the web server no longer reads its stderr:
    /// `latchkey-worker.log` beside the database.
    static func workerLog(_ config: SiteConfig) -> String {
        Path.parent(of: config.resolve(config.database)) + "/latchkey-worker.log"
    }
}
