"""A FastCGI worker's after-response jobs: appended as lines to the worker's own journal in
`var/queue/` (not a file per job, as a CGI writes) and worked by the drainer, which records how
far it got in `<journal>.done`. Jobs are worked once each, none is lost, a journal is kept while
its worker lives and removed once that worker is gone and every line is worked, and a
half-written last line (its writer died mid-write) is dropped with a report.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import maildir
from fastcgi_support import PASSWORD, THROTTLES, location_path, pool_of, proc_stat, worker_pids
from lkserver import WEB_USER, add_customer, latchkey_bin, poll
from servers import running


def journals(queue: Path) -> list[Path]:
    return sorted(p for p in queue.iterdir() if p.name.startswith(".journal-") and not p.name.endswith(".done"))


def unworked(queue: Path) -> list[str]:
    """Every job not yet worked: job files, and journal lines past their recorded offset."""
    jobs = [p.read_text() for p in queue.iterdir() if not p.name.startswith(".")] if queue.exists() else []
    for journal in journals(queue) if queue.exists() else []:
        done = journal.with_name(journal.name + ".done")
        offset = int(done.read_text()) if done.exists() else 0
        jobs += [line for line in journal.read_bytes()[offset:].decode().splitlines(keepends=True)]
    return jobs


def mail_for(box: maildir.Mailbox, address: str) -> list:
    return [m for m in box.messages() if maildir.recipient(m) == address]


def test_a_forgot_request_is_worked_after_the_answer_and_never_lost(latchkey_path):
    """A forgot POST is answered, then its job appended to the worker's journal and worked: the
    link arrives and nothing is left unworked. While another process holds the queue's lock (a
    drainer at work), the job waits rather than being worked twice or dropped, and the next
    drain sends it, once."""
    with running("nginx-fastcgi", THROTTLES) as srv:
        box = maildir.Mailbox(srv.site.var / "mail")
        queue = srv.site.var / "queue"
        add_customer(srv.site, "first@example.com", PASSWORD, offer="members")
        asked = srv.post("/cgi-bin/forgot", {"email": "first@example.com", "locale": "en"})
        assert asked.status == 303 and location_path(asked.headers) == "/forgot-sent.html", asked.status
        poll(lambda: mail_for(box, "first@example.com"), what="the reset email")
        poll(lambda: unworked(queue), lambda left: not left, what="every job worked")
        assert [p.name for p in queue.iterdir() if not p.name.startswith(".")] == [], "no job file of its own"
        assert journals(queue), "the job went through a journal"

        add_customer(srv.site, "second@example.com", PASSWORD, offer="members")
        with open(queue / ".lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            asked = srv.post("/cgi-bin/forgot", {"email": "second@example.com", "locale": "en"})
            assert asked.status == 303, asked.status
            time.sleep(0.5)
            waiting = unworked(queue)
            assert len(waiting) == 1 and waiting[0].startswith("forgot\tsecond@example.com\t"), waiting
            assert not mail_for(box, "second@example.com")
        srv.site.chown_var()
        delivered = srv.site.latchkey("mail", "deliver")
        srv.site.chown_var()
        assert delivered.returncode == 0, delivered.stderr
        poll(lambda: mail_for(box, "second@example.com"), what="the waiting reset email, sent by the next drain")
        assert not unworked(queue)
        time.sleep(0.3)
        assert len(mail_for(box, "second@example.com")) == 1
        assert len(mail_for(box, "first@example.com")) == 1


def test_retired_workers_journals_are_worked_once_and_removed(latchkey_path):
    """With max_requests 3, 24 customers each ask for a link through nginx, so most workers
    retire with jobs in their journals: every customer gets exactly one email, and only the
    journals of live workers remain."""
    with running("nginx-fastcgi", {"fastcgi": {"max_requests": 3}, **THROTTLES}) as srv:
        box = maildir.Mailbox(srv.site.var / "mail")
        queue = srv.site.var / "queue"
        people = [f"retire{n}@example.com" for n in range(24)]
        for address in people:
            add_customer(srv.site, address, PASSWORD, offer="members")
        for address in people:
            assert srv.post("/cgi-bin/forgot", {"email": address, "locale": "en"}).status == 303
        poll(lambda: [a for a in people if not mail_for(box, a)], lambda left: not left, timeout=30,
             what="an email for everybody")
        poll(lambda: unworked(queue), lambda left: not left, timeout=10, what="every job worked")
        # One more drain (as cron's `mail deliver` does) removes what retired workers left.
        srv.site.chown_var()
        assert srv.site.latchkey("mail", "deliver").returncode == 0
        srv.site.chown_var()
        live = worker_pids(srv.serve.pid)
        left = journals(queue)
        assert len(left) <= len(live), (left, live)
        assert all(int(p.name.split("-")[1]) in live for p in left), (left, live)
        orphans = [p for p in queue.iterdir() if p.name.endswith(".done") and not p.with_name(p.name[:-5]).exists()]
        assert not orphans, orphans
        time.sleep(0.3)
        assert [a for a in people if len(mail_for(box, a)) != 1] == []


def test_a_journal_is_worked_from_its_offset_and_kept_while_its_writer_lives(make_site):
    """A journal whose writer holds its shared lock: `mail deliver` works its line and keeps
    it, and the offset it records belongs to the journal's owner even when root drained; a line
    appended later is worked alone (the first is not worked again). Once the writer is gone,
    the next drain removes the journal and its offset."""
    site = make_site()
    box = maildir.Mailbox(site.var / "mail")
    for address in ("live1@example.com", "live2@example.com"):
        add_customer(site, address, PASSWORD, offer="members")
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    journal = queue / ".journal-4000000-abc"
    with open(journal, "ab") as writer:
        fcntl.flock(writer, fcntl.LOCK_SH)
        writer.write(b"forgot\tlive1@example.com\ten\t127.0.0.1\n")
        writer.flush()
        site.chown_var()
        assert site.latchkey("mail", "deliver").returncode == 0  # as root, as an admin might
        assert len(mail_for(box, "live1@example.com")) == 1 and journal.exists()
        done = journal.with_name(journal.name + ".done")
        assert (done.stat().st_uid, done.stat().st_gid) == (journal.stat().st_uid, journal.stat().st_gid), \
            "the offset belongs to the journal's owner, so the web server's drainer can update it"
        writer.write(b"forgot\tlive2@example.com\ten\t127.0.0.1\n")
        writer.flush()
        site.chown_var()
        assert site.latchkey("mail", "deliver").returncode == 0
        assert len(mail_for(box, "live2@example.com")) == 1 and len(mail_for(box, "live1@example.com")) == 1
        assert int(journal.with_name(journal.name + ".done").read_text()) == journal.stat().st_size
    site.chown_var()
    assert site.latchkey("mail", "deliver").returncode == 0
    assert not journal.exists() and not journal.with_name(journal.name + ".done").exists()
    assert len(mail_for(box, "live1@example.com")) == 1 and len(mail_for(box, "live2@example.com")) == 1


def test_a_dead_writers_half_written_line_is_dropped_with_a_report(make_site):
    """A journal left by a worker that died mid-write: its complete lines are worked, the torn
    last one is reported and dropped, and the journal removed; a second drain sends nothing."""
    site = make_site()
    box = maildir.Mailbox(site.var / "mail")
    add_customer(site, "torn@example.com", PASSWORD, offer="members")
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    journal = queue / ".journal-4000001-def"
    journal.write_bytes(b"forgot\ttorn@example.com\ten\t127.0.0.1\nnot a job\nforgot\ttorn@exa")
    site.chown_var()
    first = site.latchkey("mail", "deliver")
    assert first.returncode == 0, first.stderr
    assert "not a readable queued job" in first.stderr and "half-written" in first.stderr, first.stderr
    assert len(mail_for(box, "torn@example.com")) == 1
    assert not journal.exists() and not journal.with_name(journal.name + ".done").exists()
    site.chown_var()
    assert site.latchkey("mail", "deliver").returncode == 0
    assert len(mail_for(box, "torn@example.com")) == 1


def zombies_of(parents: set[int]) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and stat[0] == "Z" and stat[1] in parents:
                found.append(int(entry.name))
    return found


def test_a_worker_reaps_the_drainers_it_forked(latchkey_path):
    """A worker lives for many requests (under lighttpd and mod_fcgid it even starts itself
    again in place), so each drainer it forks must be collected when it ends, not left as a
    zombie against the service's process limit. One worker, four forgot requests each forking a
    drainer once the last has finished, then one more request: no zombie is left."""
    with running("nginx-fastcgi", {"fastcgi": {"workers": 1}, **THROTTLES}) as srv:
        worker = pool_of(srv, 1)
        lock = srv.site.var / "queue" / ".lock"

        def drainer_done():
            with open(lock, "a+") as held:
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    return False

        for n in range(4):
            assert srv.post("/cgi-bin/forgot", {"email": f"nobody{n}@example.com", "locale": "en"}).status == 303
            poll(drainer_done, timeout=10, what="the drainer finished")
        assert srv.get("/cgi-bin/session").status == 401
        poll(lambda: zombies_of(worker), lambda left: not left, timeout=5, what="no drainer left as a zombie")
        assert worker_pids(srv.serve.pid) == worker


def test_a_journal_whose_progress_cannot_be_read_waits(make_site):
    """The web server's drainer cannot read a journal's offset (root's 0600 file): rather than
    taking it for 0 and working every line again, it reports that and leaves the journal,
    and `mail deliver` still ends; the lock file root's drain made belongs to the folder's owner."""
    site = make_site()
    box = maildir.Mailbox(site.var / "mail")
    add_customer(site, "offset@example.com", PASSWORD, offer="members")
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    site.chown_var()
    (queue / ".lock").unlink(missing_ok=True)
    journal = queue / ".journal-4000002-abc"
    with open(journal, "ab") as writer:  # a live writer: its journal is kept
        fcntl.flock(writer, fcntl.LOCK_SH)
        writer.write(b"forgot\toffset@example.com\ten\t127.0.0.1\n")
        writer.flush()
        site.chown_var()
        assert site.latchkey("mail", "deliver").returncode == 0  # as root
        assert len(mail_for(box, "offset@example.com")) == 1
        lock = queue / ".lock"
        assert (lock.stat().st_uid, lock.stat().st_gid) == (queue.stat().st_uid, queue.stat().st_gid)
        done = journal.with_name(journal.name + ".done")
        os.chown(done, 0, 0)
        done.chmod(0o600)
        writer.write(b"deliver\t\n")
        writer.flush()
        drained = subprocess.run(["runuser", "-u", WEB_USER, "--", latchkey_bin(), "mail", "deliver", "--config", str(site.config)],
                                 capture_output=True, text=True, timeout=20)
        assert drained.returncode == 0, drained.stderr
        assert "cannot read how far it was worked" in drained.stderr, drained.stderr
        assert len(mail_for(box, "offset@example.com")) == 1, "the first line was not worked again"
        assert journal.exists() and int(done.read_text()) < journal.stat().st_size


def test_a_drain_sweeps_what_crashes_leave(make_site):
    """What a crash can leave in the queue and nothing else removes: a journal or job file still
    under its temporary name an hour on, and the offset of a journal that is gone. A drain
    removes those and keeps the locks, a live journal with its offset, and a temporary from now."""
    site = make_site()
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    hour_ago = time.time() - 3700
    old = [queue / ".new.journal-4000003-aa", queue / ".1700000000000000000-4000003-bb"]
    for path in old:
        path.write_bytes(b"")
        os.utime(path, (hour_ago, hour_ago))
    orphan = queue / ".journal-4000004-cc.done"
    orphan.write_text("00000000000000000044")
    fresh = queue / ".new.journal-4000005-dd"
    fresh.write_bytes(b"")
    (queue / ".lock").write_bytes(b"")
    (queue / ".webhooks.lock").write_bytes(b"")
    os.utime(queue / ".webhooks.lock", (hour_ago, hour_ago))
    live = queue / ".journal-4000006-ee"
    with open(live, "ab") as writer:
        fcntl.flock(writer, fcntl.LOCK_SH)
        live.with_name(live.name + ".done").write_text("00000000000000000000")
        os.utime(live, (hour_ago, hour_ago))
        site.chown_var()
        assert site.latchkey("mail", "deliver").returncode == 0
        left = sorted(p.name for p in queue.iterdir())
    assert left == sorted([".lock", ".webhooks.lock", fresh.name, live.name, live.name + ".done"]), left
