"""`latchkey serve`'s lifecycle behind a real nginx (`fastcgi_pass`): rolling restarts
(SIGHUP) under bounded mixed load with no failed request, recycling by `max_requests` and
`max_memory`, a graceful stop (SIGTERM) with a request in flight, replacement when the config
file or the database schema changed; descriptor 0 deciding the mode; and workers that lighttpd
or Apache mod_fcgid started replacing themselves in place. Every process is stopped at teardown.
"""
from __future__ import annotations

import concurrent.futures
import fcntl
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import fcgiclient as fc
import maildir
from lkserver import CGI_DIR, add_customer, deep_merge, integrity_check, poll, site_sql, sqlite_cmd
from servers import running
from fastcgi_support import (
    Load, PASSWORD, STOP_TIMEOUT, THROTTLES, answer, holds_connection, location_path, nginx_customer,
    pool_of, proc_stat, replacements, session_cookie, web_owned_tempdir, worker_pids,
)

def test_rolling_restarts_under_load_lose_no_request(latchkey_path):
    """1500 mixed requests through nginx on 8 threads while the supervisor gets SIGHUP twice:
    every answer is the expected one (no 5xx, no refused connection), afterwards every worker is
    a new process, every forgot request was worked once (none lost with a retired worker's
    journal), and the database is sound."""
    with running("nginx-fastcgi", THROTTLES) as srv:
        load = Load(srv, nginx_customer(srv, "load.hup@example.com"))
        before = pool_of(srv, 4)

        def restart_twice(load):
            for at in (300, 800):
                poll(lambda: load.done, lambda n: n >= at, timeout=60, what=f"{at} requests done")
                assert load.done < 1500
                srv.serve.send_signal(signal.SIGHUP)

        load.run(1500, during=restart_twice)
        load.check()
        after = poll(lambda: worker_pids(srv.serve.pid), lambda pids: len(pids) == 4 and not pids & before,
                     timeout=15, what="4 workers, none of them from before the restarts")
        assert not after & before
        log = srv.serve_output()
        assert log.count("rolling restart of") == 2, log
        assert "exited with status" not in log, log
        assert srv.serve.poll() is None

        def refused():  # each forgot request for the unknown address leaves one such audit row
            return site_sql(srv.site, "SELECT count(*) AS n FROM audit WHERE action = 'reset.refused'")[0]["n"]
        poll(refused, lambda n: n >= 300, timeout=30, what="the 300 forgot requests worked")
        time.sleep(0.5)
        assert refused() == 300
        assert integrity_check(srv.site) == "ok"


def voluntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for {pid}")


def test_a_connection_wakes_one_idle_worker(latchkey_path):
    """Four idle workers share one listening socket; each of 40 requests in turn wakes one of
    them, not all four (which would cost three wasted wake-ups, each a context switch and a
    failed accept, on every request). Measured by the workers' voluntary context switches: an
    answering worker sleeps two or three times per request, a woken idle one once more."""
    with running("nginx-fastcgi", THROTTLES) as srv:
        workers = sorted(pool_of(srv, 4))
        assert srv.get("/cgi-bin/session").status == 401

        def switches():
            return [voluntary_switches(pid) for pid in workers]

        settled = poll(lambda: (switches(), time.sleep(0.3), switches()), lambda s: s[0] == s[2], timeout=10,
                       what="the workers idle")[2]
        for _ in range(40):
            assert srv.get("/cgi-bin/session").status == 401
        assert worker_pids(srv.serve.pid) == set(workers)
        woken = sum(after - before for before, after in zip(settled, switches()))
        assert woken <= 40 * 2, f"{woken} wake-ups of 4 workers for 40 requests"


def test_max_requests_replaces_workers_without_failures(latchkey_path):
    """With fastcgi.max_requests 50, 600 requests through nginx make workers retire after
    their 50th answer (the log says so) and every request is answered as expected."""
    with running("nginx-fastcgi", {"fastcgi": {"max_requests": 50}, **THROTTLES}) as srv:
        load = Load(srv, nginx_customer(srv, "load.max@example.com"))
        pool_of(srv, 4)
        load.run(600)
        load.check()
        lines = poll(lambda: replacements(srv.serve_output(), "replaced after 50 requests: max_requests (50)"),
                     lambda found: len(found) >= 8, timeout=10, what="8 replacements for max_requests")
        pids = {re.search(r"worker (\d+) replaced", line).group(1) for line in lines}
        assert len(pids) == len(lines), lines
        assert "exited with status" not in srv.serve_output()
        assert srv.serve.poll() is None and worker_pids(srv.serve.pid)
        assert integrity_check(srv.site) == "ok"


def test_max_memory_replaces_each_worker_after_its_request(latchkey_path):
    """fastcgi.max_memory "1M" is below any worker's resident size: each request is answered
    correctly, and each answering worker is replaced after it, the log naming max_memory."""
    with running("nginx-fastcgi", {"fastcgi": {"max_memory": "1M"}, **THROTTLES}) as srv:
        cookie = {"Cookie": "lk_session=" + nginx_customer(srv, "mem@example.com")}
        for i in range(6):
            resp = srv.get("/cgi-bin/reset?token=bogus")
            assert resp.status == 303 and location_path(resp.headers) == "/expired.html", resp.headers
            resp = srv.get("/members/", headers=cookie)
            assert resp.status == 200, (resp.status, resp.headers)
        # The login and 12 requests above: 13 answers, each by a worker that then left.
        lines = poll(lambda: replacements(srv.serve_output(), "above max_memory (1024 KiB)"),
                     lambda found: len(found) >= 13, timeout=10, what="13 replacements for max_memory")
        assert all("replaced after 1 requests" in line for line in lines), lines
        assert "exited with status" not in srv.serve_output()


def test_max_memory_recycling_keeps_the_pool_full_and_requests_prompt(latchkey_path):
    """Recycling after every request must not starve the pool: 24 requests one after another
    are each answered in well under a second, and afterwards the pool is back to 4 workers."""
    with running("nginx-fastcgi", {"fastcgi": {"max_memory": "1M"}}) as srv:
        slow = []
        for i in range(24):
            started = time.monotonic()
            resp = srv.get("/cgi-bin/reset?token=bogus")
            elapsed = time.monotonic() - started
            assert resp.status == 303
            if elapsed > 0.5:
                slow.append(f"request {i}: {elapsed:.2f}s")
        assert not slow, slow
        pool_of(srv, 4, timeout=3)


def test_sigterm_lets_the_request_in_flight_finish(latchkey_path):
    """A login POST (a deliberately costly Argon2id) is in a worker's hands when the supervisor
    gets SIGTERM: it still gets its 303 and session, then the supervisor exits 0 and removes its
    socket."""
    config = {"password": {"argon2_iterations": 30}, **THROTTLES}
    with running("nginx-fastcgi", config) as srv:
        address = "graceful@example.com"
        add_customer(srv.site, address, PASSWORD, offer="members")
        workers = pool_of(srv, 4)
        result = {}

        def log_in():
            try:
                result["resp"] = srv.post("/cgi-bin/login", {"email": address, "password": PASSWORD, "locale": "en"})
            except Exception as error:
                result["error"] = error
            result["at"] = time.monotonic()

        thread = threading.Thread(target=log_in)
        thread.start()
        try:
            poll(lambda: [pid for pid in workers if holds_connection(pid)], timeout=10, interval=0.002,
                 what="a worker holding the login")
            signalled = time.monotonic()
            srv.serve.send_signal(signal.SIGTERM)
        finally:
            thread.join(timeout=60)
        assert "error" not in result, result.get("error")
        resp = result["resp"]
        assert resp.status == 303 and location_path(resp.headers) == "/members/", (resp.status, resp.headers, srv.error_log()[-2000:])
        assert session_cookie(resp.all("set-cookie"))
        assert result["at"] > signalled, "the login was answered before the signal: nothing was in flight"
        assert srv.serve.wait(timeout=STOP_TIMEOUT) == 0, srv.serve_output()
        assert "stopping: each worker finishes its request" in srv.serve_output()
        assert not Path(srv.serve_listen[5:]).exists(), "the socket was left behind"
        assert not any(proc_stat(pid) and proc_stat(pid)[0] != "Z" for pid in workers), "a worker outlived the stop"


def test_a_new_connection_is_answered_by_a_worker_told_to_stop(latchkey_path):
    """A web server connects, then sends its request a moment later. A worker that accepted the
    connection and is told to stop in between (a rolling restart) still answers that request:
    the connection is new, not an idle kept one, and closing it would be a 502."""
    with running("nginx-fastcgi", THROTTLES) as srv:
        workers = pool_of(srv, 4)
        with fc.connect(srv.serve_listen) as sock:
            holder = poll(lambda: [pid for pid in workers if holds_connection(pid)], timeout=10, interval=0.002,
                          what="a worker holding the new connection")[0]
            srv.serve.send_signal(signal.SIGHUP)
            poll(lambda: "rolling restart of" in srv.serve_output(), timeout=10, what="the rolling restart under way")
            time.sleep(1.0)  # the old workers have been told to stop by now
            assert proc_stat(holder) and proc_stat(holder)[0] != "Z", "the holder stays until it has answered"
            env = {"SCRIPT_NAME": "/cgi-bin/session", "REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1",
                   "LATCHKEY_CONFIG": str(srv.site.config), "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}
            sock.sendall(fc.request_bytes(env))
            stdout, _, _, _ = fc.read_response(fc.Records(sock))
            assert fc.split_http(stdout)[0] == 401
        poll(lambda: proc_stat(holder) is None or proc_stat(holder)[0] == "Z", timeout=10, what="the old worker gone")


def test_config_change_replaces_the_worker_that_notices(latchkey_path):
    """Rewriting latchkey.json (a harmless change) while the workers run: requests go on being
    answered, and a worker that had the old settings answers with the new file, logs "the config
    file changed", and is replaced."""
    with running("nginx-fastcgi", THROTTLES) as srv:
        pool_of(srv, 4)
        for _ in range(8):  # every worker likely holds the old settings now
            assert srv.get("/cgi-bin/reset?token=bogus").status == 303
        srv.site.update_config(throttle={"forgot_per_ip": {"count": 999999}})

        def ask():
            resp = srv.get("/cgi-bin/reset?token=bogus")
            assert resp.status == 303 and location_path(resp.headers) == "/expired.html", (resp.status, resp.headers)
            return replacements(srv.serve_output(), "the config file changed")

        lines = poll(ask, timeout=10, interval=0.01, what="a worker replaced for the config change")
        pid = int(re.search(r"worker (\d+) replaced", lines[0]).group(1))
        poll(lambda: worker_pids(srv.serve.pid), lambda pids: pid not in pids and len(pids) == 4, timeout=10,
             what=f"worker {pid} gone and the pool full again")
        assert srv.get("/login.html").status == 200
        assert "exited with status" not in srv.serve_output()


LOOKUP = "/cgi-bin/reset?token=" + "A" * 43


def test_schema_change_replaces_the_worker_that_notices(latchkey_path):
    """Another process changes the database's schema (as an upgrade's migration does) while the
    workers run: the next worker to use the database answers, logs "the database schema
    changed", and is replaced, so no worker goes on with statements made for the old one. (A
    link of the right shape is looked up; SQLite notices the change when a statement prepared
    before it runs again.)"""
    with running("nginx-fastcgi", THROTTLES) as srv:
        pool_of(srv, 4)
        for _ in range(8):
            assert srv.get(LOOKUP).status == 303
        subprocess.run(sqlite_cmd(srv.site, "CREATE TABLE upgrade_probe (a INTEGER)"), check=True, capture_output=True)
        srv.site.chown_var()

        def ask():
            resp = srv.get(LOOKUP)
            assert resp.status == 303 and location_path(resp.headers) == "/expired.html", (resp.status, resp.headers)
            return replacements(srv.serve_output(), "the database schema changed")

        poll(ask, timeout=10, interval=0.01, what="a worker replaced for the schema change")
        assert "exited with status" not in srv.serve_output()


def test_descriptor_0_decides_the_mode(default_site):
    """FastCGI 1.0 §2.2: a listening socket on descriptor 0 makes the executable a responder; a
    connected socket there (what mod_cgid gives a CGI) or a pipe keeps it plain CGI, answering
    once on standard output and exiting."""
    env = {"LATCHKEY_CONFIG": str(default_site.config), "REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1"}
    ours, theirs = socket.socketpair()
    with ours, theirs:
        done = subprocess.run([str(CGI_DIR / "session")], stdin=theirs, capture_output=True, env=env, timeout=10)
    assert done.returncode == 0 and done.stdout.startswith(b"Status: 401"), done
    piped = subprocess.run([str(CGI_DIR / "session")], input=b"", capture_output=True, env=env, timeout=10)
    assert piped.returncode == 0 and piped.stdout.startswith(b"Status: 401"), piped
    runtime = web_owned_tempdir("latchkey-fd0-")
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(runtime / "fd0.sock"))
        listener.listen(4)
        worker = subprocess.Popen([str(CGI_DIR / "session")], stdin=listener.fileno(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env)
        try:
            status, _, _ = answer(f"unix:{runtime}/fd0.sock", fc.request_bytes({**env, "SCRIPT_NAME": "/cgi-bin/session"}))
            assert status == 401 and worker.poll() is None, "a responder answers and stays for the next request"
        finally:
            worker.terminate()
            assert worker.wait(timeout=10) == 0, "SIGTERM ends an idle worker cleanly"
    finally:
        listener.close()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)



@pytest.mark.parametrize("kind", ["lighttpd-fastcgi", "apache-fcgid"])
def test_a_worker_the_web_server_started_replaces_itself_in_place(latchkey_path, kind):
    """Under lighttpd (bin-path) and mod_fcgid the server, not latchkey serve, owns the workers,
    and counts one that exits as gone (lighttpd refuses requests until it has started another).
    So a worker due for replacement starts itself again in place: with max_requests 20, 300
    requests from 8 threads all get their answer, and the log shows the replacements."""
    config = deep_merge(THROTTLES, {"fastcgi": {"max_requests": 20}})
    with running(kind, config) as srv:
        paths = ["/cgi-bin/reset?token=bogus", "/cgi-bin/session", "/login.html"]
        expected = {"/cgi-bin/reset?token=bogus": 303, "/cgi-bin/session": 401, "/login.html": 200}

        def one(i):
            path = paths[i % len(paths)]
            return path, srv.get(path).status

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(300)))
        wrong = [(path, status) for path, status in answers if status != expected[path]]
        assert not wrong, (wrong[:10], srv.error_log()[-3000:])
        assert len(re.findall(r"replaced after 20 requests: max_requests", srv.error_log())) >= 5, srv.error_log()[-3000:]
