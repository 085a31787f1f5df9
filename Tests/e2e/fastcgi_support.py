"""What the FastCGI tests share: `latchkey serve` started by a test, the processes it runs,
and FastCGI exchanges with a worker (the client itself is fcgiclient.py).
"""
from __future__ import annotations

import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fcgiclient as fc
from lkserver import WEB_USER, Site, add_customer, cgi_environ, latchkey_bin, poll, served_tempdir

PASSWORD = "correct horse battery"
# Generous throttles: these tests ask for links and log in many times from one address.
THROTTLES = {"throttle": {"forgot_per_ip": {"count": 1000000, "window": "1h"},
                          "login_failures_per_ip": {"count": 1000000, "window": "1h"}}}
READ_TIMEOUT = 1.0  # seconds: the protocol site's `fastcgi.read_timeout`
STOP_TIMEOUT = 40   # the supervisor kills stragglers after 30 s; give it a little more


# --- processes ----------------------------------------------------------------------------------
def web_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(WEB_USER)
    return entry.pw_uid, entry.pw_gid


def web_owned_tempdir(prefix: str) -> Path:
    """A 0755 folder under /tmp owned by the web user: where the workers' socket lives, so the
    supervisor (which has become that user) may remove it when it stops."""
    folder = served_tempdir(prefix)
    if os.geteuid() == 0:
        os.chown(folder, *web_ids())
    return folder


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[1])


def worker_pids(supervisor_pid: int) -> set[int]:
    """The supervisor's live (not zombie) children: its workers."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and stat[1] == supervisor_pid and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def holds_connection(pid: int) -> bool:
    """True when worker `pid` has accepted a connection: a socket besides its listening one."""
    try:
        listening = os.readlink(f"/proc/{pid}/fd/0")
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link.startswith("socket:") and link != listening for link in links)


class Serve:
    """`latchkey serve` started by the test (as root, workers as www-data), in its own session,
    its stderr in a log file. `stop()` sends SIGTERM and returns the exit status."""

    def __init__(self, site: Site, listen: str | None, *args, env=None, pass_socket: socket.socket | None = None):
        self.site = site
        self.listen = listen
        self.runtime = web_owned_tempdir("latchkey-serve-")
        self.log_path = self.runtime / "serve.log"
        cmd = [latchkey_bin(), "serve", *(["--listen", listen] if listen else []), *args,
               "--user", WEB_USER, "--config", str(site.config)]
        full_env = {k: v for k, v in os.environ.items() if k not in ("LATCHKEY_CONFIG", "LISTEN_FDS", "LISTEN_PID")}
        full_env.update(env or {})
        kwargs = {}
        if pass_socket is not None:
            kwargs = systemd_socket_kwargs(pass_socket)
            full_env = None  # the child's own environment, LISTEN_* set by preexec_fn
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=full_env, start_new_session=True, **kwargs)

    def wait_listening(self, address: str, timeout: float = 10.0) -> "Serve":
        def accepts():
            if self.proc.poll() is not None:
                raise AssertionError(f"latchkey serve exited ({self.proc.returncode}):\n{self.log()}")
            try:
                fc.connect(address, timeout=0.5).close()
                return True
            except OSError:
                return False
        poll(accepts, timeout=timeout, what=f"latchkey serve accepting on {address}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise AssertionError(f"latchkey serve ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.log()}")
        return self.proc.returncode

    def cleanup(self) -> None:
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        subprocess.run(["rm", "-rf", str(self.runtime)], check=False)


def systemd_socket_kwargs(sock: socket.socket) -> dict:
    """Popen arguments that hand `sock` to the child as descriptor 3 with LISTEN_FDS=1 and
    LISTEN_PID=<the child's pid>, as systemd does. The dup2 happens in the child, so the test
    process's own descriptor 3 is left alone."""
    fd = sock.fileno()

    def in_child():
        if fd == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(fd, 3)  # dup2 makes 3 inheritable
        for name in ("LATCHKEY_CONFIG",):
            os.environ.pop(name, None)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    return {"preexec_fn": in_child, "close_fds": False}


# --- FastCGI exchanges --------------------------------------------------------------------------
def fcgi_env(site: Site, endpoint: str, method: str = "GET", body: bytes = b"", query: str = "", **kwargs) -> dict:
    """What a web server sends as params for `/cgi-bin/ENDPOINT`: the CGI environment plus
    REQUEST_URI (routing is by SCRIPT_NAME + PATH_INFO)."""
    env = cgi_environ(site, endpoint, method, body, query=query,
                      content_type="application/x-www-form-urlencoded" if method == "POST" else None,
                      **kwargs)
    env.pop("PATH", None)
    env["REQUEST_URI"] = f"/cgi-bin/{endpoint}" + (f"?{query}" if query else "")
    return env


def form(**fields) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def roundtrip(address: str, data: bytes, request_id: int = 1, timeout: float = 10.0):
    """Sends `data` on a new connection; (stdout, stderr, app_status, protocol_status) of `request_id`."""
    with fc.connect(address, timeout=timeout) as sock:
        sock.sendall(data)
        return fc.read_response(fc.Records(sock), request_id)


def answer(address: str, data: bytes, request_id: int = 1):
    """The HTTP answer (status, headers, body) of a request sent as `data`; it must END_REQUEST
    with REQUEST_COMPLETE."""
    out, _, _, proto = roundtrip(address, data, request_id)
    assert proto == fc.REQUEST_COMPLETE, f"protocol status {proto}"
    return fc.split_http(out)


def closed_by_peer(sock: socket.socket, within: float) -> float | None:
    """Seconds until the peer closes `sock` (reads and ignores nothing: any byte is a failure),
    or None when it is still open after `within` seconds."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - started
    assert data == b"", f"expected the connection to close, got {data[:80]!r}"
    return time.monotonic() - started


def records_until_end(records: fc.Records, request_id: int) -> list:
    """Every record (type, id, content) up to and including END_REQUEST for `request_id`."""
    seen = []
    while True:
        rec = records.next()
        assert rec is not None, f"connection closed before END_REQUEST {request_id}; got {[r[:2] for r in seen]}"
        seen.append(rec)
        if rec[0] == fc.END_REQUEST and rec[1] == request_id:
            return seen


def answer_of(seen: list):
    """(status, headers, protocol_status) of the STDOUT and END_REQUEST records in `seen`."""
    out = b"".join(content for rtype, _, content in seen if rtype == fc.STDOUT)
    status, headers, _ = fc.split_http(out)
    return status, headers, struct.unpack(">IB3x", seen[-1][2])[1]


def location_path(headers: dict) -> str:
    return urllib.parse.urlsplit(headers.get("location", "")).path


def session_cookie(set_cookie_headers) -> str | None:
    """The lk_session value among Set-Cookie headers (for a FastCGI answer, from `set_cookies`:
    fcgiclient's header dict keeps only the first of repeated headers)."""
    for header in set_cookie_headers:
        name, _, rest = header.partition("=")
        if name.strip() == "lk_session":
            return rest.split(";", 1)[0]
    return None


def set_cookies(stdout: bytes) -> list[str]:
    head = stdout.partition(b"\r\n\r\n")[0].decode("latin-1")
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("set-cookie:")]


def in_small_records(rtype: int, request_id: int, data: bytes, size: int = 3) -> bytes:
    """`data` as records of `size` bytes, then the empty record ending the stream."""
    pieces = [fc.record(rtype, request_id, data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(pieces) + fc.record(rtype, request_id)



# --- behind a web server -----------------------------------------------------------------------
class Load:
    """Mixed requests through the web server from a pool of threads, counting what came back."""

    def __init__(self, srv, cookie: str):
        self.srv = srv
        self.cookie = {"Cookie": f"lk_session={cookie}"}
        self.done = 0
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.statuses: Counter = Counter()

    def one(self, i: int) -> None:
        srv, kind = self.srv, i % 5
        try:
            if kind == 0:
                resp, want = srv.get("/cgi-bin/session", headers=self.cookie), (204, None)
            elif kind == 1:
                resp, want = srv.get("/cgi-bin/reset?token=bogus"), (303, "/expired.html")
            elif kind == 2:
                resp, want = srv.get("/members/", headers=self.cookie), (200, None)
            elif kind == 3:
                resp, want = srv.post("/cgi-bin/forgot", {"email": "nobody.load@example.com", "locale": "en"}), (303, "/forgot-sent.html")
            else:
                resp, want = srv.get("/login.html"), (200, None)
            problem = None
            if resp.status != want[0] or (want[1] and location_path(resp.headers) != want[1]):
                problem = f"request {i}: {resp.status} {resp.headers.get('location')} (wanted {want}) {resp.text[:200]!r}"
        except Exception as error:  # a refused or reset connection, a timeout
            resp, problem = None, f"request {i}: {type(error).__name__}: {error}"
        with self.lock:
            self.done += 1
            if resp is not None:
                self.statuses[resp.status] += 1
            if problem:
                self.failures.append(problem)

    def run(self, count: int, threads: int = 8, during=None) -> None:
        """`count` requests on `threads` threads; `during(self)` runs meanwhile in this thread."""
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(self.one, i) for i in range(count)]
            if during:
                during(self)
            for future in futures:
                future.result()

    def check(self) -> None:
        assert not self.failures, (f"{len(self.failures)} failed of {self.done}: " + "\n".join(self.failures[:10])
                                   + f"\n{self.srv.error_log()[-3000:]}")
        nginx_log = (self.srv.runtime_dir / "error.log").read_text(errors="replace") if (self.srv.runtime_dir / "error.log").exists() else ""
        complaints = [line for line in nginx_log.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", line)]
        assert not complaints, "nginx logged:\n" + "\n".join(complaints[:10])


def nginx_customer(srv, address: str, password: str = PASSWORD) -> str:
    """A members customer logged in through nginx; its session cookie."""
    add_customer(srv.site, address, password, offer="members")
    resp = srv.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"})
    assert resp.status == 303 and location_path(resp.headers) == "/members/", (resp.status, resp.headers, srv.error_log()[-2000:])
    value = session_cookie(resp.all("set-cookie"))
    assert value
    return value


def replacements(log: str, reason: str) -> list[str]:
    return [line for line in log.splitlines() if "latchkey fastcgi: notice: worker" in line and reason in line]


def pool_of(srv, size: int, timeout: float = 10) -> set[int]:
    return poll(lambda: worker_pids(srv.serve.pid), lambda pids: len(pids) == size, timeout=timeout,
                what=f"{size} workers")
