"""Latchkey's FastCGI mode: the CGI executable as a persistent responder behind `latchkey serve`.

Three parts.

1. The protocol, spoken directly to `latchkey serve --listen unix:… --workers 2` with the
   tests' own FastCGI client (fcgiclient.py, written from the spec): management records,
   roles, multiplexing refused, kept connections, malformed and oversized params, a bad
   version byte, ABORT_REQUEST, bodies in many records or longer than they say, slow and
   stalled clients, and the authorizer role used by lighttpd and Apache for the members area.
2. The supervisor's lifecycle behind a real nginx (`fastcgi_pass`): rolling restarts (SIGHUP)
   under load, recycling by `max_requests` and `max_memory`, a graceful stop (SIGTERM) with a
   request in flight, and replacement when the config file changes.
3. The command line around it: `latchkey webserver systemd`, the refusals of `latchkey serve`,
   and a systemd-style start with the socket passed on descriptor 3 (LISTEN_FDS / LISTEN_PID).

Every process started here is stopped at teardown; everything listens on unix sockets or
127.0.0.1.
"""
from __future__ import annotations

import concurrent.futures
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

import pytest

import fcgiclient as fc
from lkserver import (
    CGI_DIR, WEB_USER, Site, add_customer, admin_ok, cgi_environ, integrity_check, latchkey_bin, poll, run_latchkey,
    deep_merge, served_tempdir, site_sql, sqlite_cmd,
)
from servers import running

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


# --- the protocol: one `latchkey serve` for the module ----------------------------------------
class Served:
    """The module's site and `latchkey serve` (2 workers, read_timeout 1s) on a unix socket."""

    def __init__(self, site: Site, serve: Serve, address: str):
        self.site, self.serve, self.address = site, serve, address
        self.socket_path = Path(address[5:])

    def env(self, endpoint: str, method: str = "GET", body: bytes = b"", **kwargs) -> dict:
        return fcgi_env(self.site, endpoint, method, body, **kwargs)


@pytest.fixture(scope="module")
def served(latchkey_path):
    """The module's site (read_timeout 1s) and `latchkey serve --workers 2` on a unix socket in
    a folder of the web user's. Teardown: SIGTERM, which must end it with 0 and remove the socket."""
    site = Site.create({"fastcgi": {"read_timeout": f"{READ_TIMEOUT:.0f}s"}, **THROTTLES})
    runtime = web_owned_tempdir("latchkey-fcgi-")
    serve = None
    try:
        address = f"unix:{runtime}/latchkey.sock"
        serve = Serve(site, address, "--workers", "2").wait_listening(address)
        poll(lambda: len(worker_pids(serve.proc.pid)) == 2, timeout=10, what="2 workers running")
        yield Served(site, serve, address)
        status = serve.stop()
        assert status == 0, f"latchkey serve exited {status} on SIGTERM:\n{serve.log()}"
        assert not Path(address[5:]).exists(), f"latchkey serve left its socket {address} behind"
    finally:
        if serve is not None:
            serve.cleanup()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)
        site.remove()


def pin_both_workers_warm(served: Served) -> None:
    """Makes sure both workers have answered a request (and so loaded the site and its
    read_timeout): a connection held mid-request occupies one worker, so a request on a second
    connection must be answered by the other; then the first is completed."""
    env = served.env("session")
    with fc.connect(served.address) as held:
        held.sendall(fc.begin(1) + fc.record(fc.PARAMS, 1, fc.params(env)))
        status, _, _ = answer(served.address, fc.request_bytes(env))
        assert status == 401
        held.sendall(fc.record(fc.PARAMS, 1) + fc.stream(fc.STDIN, 1, b""))
        out, _, _, proto = fc.read_response(fc.Records(held))
        assert proto == fc.REQUEST_COMPLETE and fc.split_http(out)[0] == 401


def test_get_values_answers_exactly_the_names_asked(served):
    """GET_VALUES (request id 0) is answered with GET_VALUES_RESULT: one connection, one request
    per connection, no multiplexing, and nothing for a name the worker does not know; the
    connection then still takes a request."""
    asked = fc.params({"FCGI_MAX_CONNS": "", "FCGI_MAX_REQS": "", "FCGI_MPXS_CONNS": "", "FCGI_NO_SUCH_NAME": ""})
    with fc.connect(served.address) as sock:
        sock.sendall(fc.record(fc.GET_VALUES, 0, asked))
        records = fc.Records(sock)
        rtype, rid, content = records.next()
        assert (rtype, rid) == (fc.GET_VALUES_RESULT, 0)
        assert fc.decode_params(content) == {"FCGI_MAX_CONNS": "1", "FCGI_MAX_REQS": "1", "FCGI_MPXS_CONNS": "0"}
        # Only what is asked: one name in, one name out.
        sock.sendall(fc.record(fc.GET_VALUES, 0, fc.params({"FCGI_MPXS_CONNS": ""})))
        rtype, rid, content = records.next()
        assert (rtype, rid, fc.decode_params(content)) == (fc.GET_VALUES_RESULT, 0, {"FCGI_MPXS_CONNS": "0"})
        sock.sendall(fc.request_bytes(served.env("session")))
        out, _, _, proto = fc.read_response(records)
        assert proto == fc.REQUEST_COMPLETE and fc.split_http(out)[0] == 401


def test_unknown_management_type_gets_unknown_type(served):
    """A management record of a type the worker does not know (99, id 0) is answered
    UNKNOWN_TYPE naming that type (§4.2), and the connection goes on."""
    with fc.connect(served.address) as sock:
        sock.sendall(fc.record(99, 0, b"whatever"))
        records = fc.Records(sock)
        rtype, rid, content = records.next()
        assert (rtype, rid) == (fc.UNKNOWN_TYPE, 0)
        assert content == bytes([99, 0, 0, 0, 0, 0, 0, 0])
        sock.sendall(fc.request_bytes(served.env("session")))
        out, _, _, proto = fc.read_response(records)
        assert proto == fc.REQUEST_COMPLETE and fc.split_http(out)[0] == 401


@pytest.mark.parametrize("role", [fc.FILTER, 7])
def test_filter_and_unknown_roles_are_refused_unknown_role(served, role):
    """A worker is a responder (and an authorizer): FILTER, or a role with no name, gets
    END_REQUEST with UNKNOWN_ROLE and no answer on STDOUT."""
    with fc.connect(served.address) as sock:
        sock.sendall(fc.begin(1, role=role, keep=True))
        out, err, _, proto = fc.read_response(fc.Records(sock))
    assert proto == fc.UNKNOWN_ROLE
    assert out == b"" and err == b""


def test_second_request_while_one_is_open_gets_cant_mpx_conn(served):
    """BEGIN_REQUEST id 2 while request 1 is still arriving is refused CANT_MPX_CONN at once;
    request 1 is then answered normally, with its own answer (the reset endpoint's 303 to
    expired.html, not the refused session check's 401), and nothing more comes for id 2."""
    env = served.env("reset", query="token=bogus")
    with fc.connect(served.address) as sock:
        records = fc.Records(sock)
        sock.sendall(fc.begin(1) + fc.record(fc.PARAMS, 1, fc.params(env)))
        sock.sendall(fc.begin(2) + fc.stream(fc.PARAMS, 2, fc.params(served.env("session"))) + fc.stream(fc.STDIN, 2, b""))
        rtype, rid, content = records.next()
        assert (rtype, rid) == (fc.END_REQUEST, 2), (rtype, rid)
        assert struct.unpack(">IB3x", content)[1] == fc.CANT_MPX_CONN
        sock.sendall(fc.record(fc.PARAMS, 1) + fc.stream(fc.STDIN, 1, b""))
        seen = records_until_end(records, 1)
    assert {rid for _, rid, _ in seen} == {1}, [(t, r) for t, r, _ in seen]
    status, headers, proto = answer_of(seen)
    assert proto == fc.REQUEST_COMPLETE
    assert status == 303 and location_path(headers) == "/expired.html", (status, headers)


def test_each_request_is_answered_by_exactly_one_end_request(served):
    """The records of one request, read until the worker closes the connection: STDOUT with the
    answer, one empty STDOUT ending the stream, one END_REQUEST, nothing after (§5.1)."""
    with fc.connect(served.address) as sock:
        sock.sendall(fc.request_bytes(served.env("session")))
        records, seen = fc.Records(sock), []
        while (rec := records.next()) is not None:
            seen.append((rec[0], rec[1], len(rec[2])))
    kinds = [(rtype, length == 0) for rtype, _, length in seen]
    assert kinds[-2:] == [(fc.STDOUT, True), (fc.END_REQUEST, False)], seen
    assert kinds.count((fc.END_REQUEST, False)) == 1 and kinds.count((fc.STDOUT, True)) == 1, seen


def test_keep_conn_serves_three_requests_on_one_connection(served):
    """FCGI_KEEP_CONN: three requests on one connection, each with request id 1 as nginx sends
    them (`fastcgi_keep_conn on`), are each answered with their own answer, in order; a fourth
    without the flag is answered and then the worker closes the connection."""
    requests = [("session", "", 401, ""), ("reset", "token=bogus", 303, "/expired.html"),
                ("session", "", 401, ""), ("reset", "token=bogus", 303, "/expired.html")]
    with fc.connect(served.address) as sock:
        records = fc.Records(sock)
        for number, (endpoint, query, status, where) in enumerate(requests, start=1):
            keep = number < len(requests)
            sock.sendall(fc.request_bytes(served.env(endpoint, query=query), request_id=1, keep=keep))
            seen = records_until_end(records, 1)
            got, headers, proto = answer_of(seen)
            assert proto == fc.REQUEST_COMPLETE and got == status and location_path(headers) == where, \
                (number, got, headers, [(t, r, len(c)) for t, r, c in seen])
        assert records.buffer == b"", records.buffer
        assert closed_by_peer(sock, within=5) is not None, "no FCGI_KEEP_CONN, yet the connection stayed open"


MALFORMED_PARAMS = {
    "name length past the end": bytes([100, 1]) + b"abc",
    "four-byte length past the end": struct.pack(">I", 0x80000000 | 5000) + bytes([1]) + b"NAME",
    "length cut off": bytes([0x85, 0x00]),
    "name not UTF-8": bytes([4, 1]) + b"\xffABC" + b"x",
    "value not UTF-8": bytes([4, 2]) + b"NAME" + b"\xc3\x28",
}


@pytest.mark.parametrize("raw", list(MALFORMED_PARAMS.values()), ids=list(MALFORMED_PARAMS))
def test_malformed_params_get_a_400_page(served, raw):
    """A PARAMS stream that does not decode (a length past the end, a cut-off length, bytes
    that are not UTF-8) is answered 400 with the error page, and the request completes."""
    good = fc.params(served.env("session"))
    data = fc.begin(1) + fc.stream(fc.PARAMS, 1, good + raw) + fc.stream(fc.STDIN, 1, b"")
    status, headers, body = answer(served.address, data)
    assert status == 400, (status, headers, body[:200])
    assert headers.get("content-type", "").startswith("text/html") and b"<html" in body.lower()


def test_params_over_64_kib_get_431(served):
    """Params above 64 KiB (a 70,000-byte header, over two PARAMS records) are answered 431;
    just under the limit is an ordinary request."""
    env = served.env("session")
    big = dict(env, HTTP_X_PADDING="p" * 70_000)
    status, headers, _ = answer(served.address, fc.request_bytes(big))
    assert status == 431, (status, headers)
    assert headers.get("status", "").startswith("431")
    room = 64 * 1024 - len(fc.params(env)) - 200
    fits = dict(env, HTTP_X_PADDING="p" * room)
    assert answer(served.address, fc.request_bytes(fits))[0] == 401


def test_bad_version_byte_closes_the_connection_and_the_worker_goes_on(served):
    """A record whose version is not 1 cannot be framed: the worker closes the connection
    without answering, and a fresh connection is answered as usual."""
    workers = worker_pids(served.serve.proc.pid)
    with fc.connect(served.address) as sock:
        good = fc.request_bytes(served.env("session"))
        sock.sendall(bytes([2]) + good[1:])
        assert closed_by_peer(sock, within=5) is not None, "a version-2 record left the connection open"
    for _ in range(3):  # either worker may have taken it; both must still serve
        assert answer(served.address, fc.request_bytes(served.env("session")))[0] == 401
    assert "refused: badVersion(2)" in served.serve.log()
    assert worker_pids(served.serve.proc.pid) == workers, "a worker was lost to the bad record"


def test_abort_request_ends_it_with_end_request_and_nothing_else(served):
    """ABORT_REQUEST while the body is arriving: END_REQUEST (REQUEST_COMPLETE) and no STDOUT;
    the next request on the kept connection gets its own answer, and the first record after the
    END_REQUEST is that request's."""
    body = form(email="aborted@example.com", locale="en")
    env = served.env("forgot", "POST", body)
    with fc.connect(served.address) as sock:
        records = fc.Records(sock)
        sock.sendall(fc.begin(1, keep=True) + fc.stream(fc.PARAMS, 1, fc.params(env))
                     + fc.record(fc.STDIN, 1, body[:10]))
        sock.sendall(fc.record(fc.ABORT_REQUEST, 1))
        rtype, rid, content = records.next()
        assert (rtype, rid) == (fc.END_REQUEST, 1), (rtype, rid, content)
        assert struct.unpack(">IB3x", content)[1] == fc.REQUEST_COMPLETE
        # The rest of the aborted body, had the worker not dropped the request, would be taken
        # for it; it must be ignored.
        sock.sendall(fc.record(fc.STDIN, 1, body[10:]) + fc.record(fc.STDIN, 1))
        sock.sendall(fc.request_bytes(served.env("reset", query="token=bogus"), request_id=2))
        seen = records_until_end(records, 2)
    assert {rid for _, rid, _ in seen} == {2}, f"records after the abort: {[(t, r) for t, r, _ in seen]}"
    status, headers, proto = answer_of(seen)
    assert proto == fc.REQUEST_COMPLETE and status == 303 and location_path(headers) == "/expired.html", (status, headers)


def test_post_body_in_many_small_stdin_records(served):
    """A forgot-password POST whose body comes in 3-byte STDIN records (and params in 5-byte
    PARAMS records) is answered as through a web server: 303 to forgot-sent.html. The same
    body cut short of CONTENT_LENGTH is a 400, so the 303 shows every piece was put together."""
    body = form(email="nobody.split@example.com", locale="en")
    env = served.env("forgot", "POST", body)
    data = fc.begin(1) + in_small_records(fc.PARAMS, 1, fc.params(env), 5) + in_small_records(fc.STDIN, 1, body, 3)
    status, headers, _ = answer(served.address, data)
    assert status == 303 and location_path(headers) == "/forgot-sent.html", (status, headers)
    assert headers["location"] == served.site.read_config()["base_url"].rstrip("/") + "/forgot-sent.html"
    short = fc.begin(1) + fc.stream(fc.PARAMS, 1, fc.params(env)) + in_small_records(fc.STDIN, 1, body[:-4], 3)
    assert answer(served.address, short)[0] == 400
    # An address that is not one goes to the form again: the fields were read, not just counted.
    bad = form(email="not-an-address", locale="en")
    data = fc.begin(1) + fc.stream(fc.PARAMS, 1, fc.params(served.env("forgot", "POST", bad))) + in_small_records(fc.STDIN, 1, bad, 2)
    status, headers, _ = answer(served.address, data)
    assert status == 303 and location_path(headers) != "/forgot-sent.html", headers


def test_body_far_longer_than_content_length_gets_413(served):
    """A STDIN stream of more than 1 MiB for a CONTENT_LENGTH of a few bytes: 413, and the
    connection stays in step (the request completes)."""
    body = form(email="nobody.long@example.com", locale="en")
    env = served.env("forgot", "POST", body)
    status, headers, _ = answer(served.address, fc.request_bytes(env, body + b"&x=" + b"y" * (1 << 20)))
    assert status == 413, (status, headers)


def test_body_a_little_longer_than_content_length_is_read_to_content_length(served):
    """STDIN carries 9 bytes more than CONTENT_LENGTH says. As under CGI, where the program reads
    exactly CONTENT_LENGTH bytes (RFC 3875 §4.1.2), the body is what the length declares and the
    rest is never looked at: here a well-formed forgot POST, answered as such."""
    body = form(email="nobody.longer@example.com", locale="en")
    env = served.env("forgot", "POST", body)  # CONTENT_LENGTH = len(body)
    status, headers, _ = answer(served.address, fc.request_bytes(env, body + b"&evil=yes"))
    assert status == 303 and headers["location"].endswith("/forgot-sent.html"), (status, headers)


def test_slow_client_trickling_inside_the_timeout_is_answered(served):
    """A client that sends its whole request a byte at a time, with a few pauses of 0.6 s (each
    inside the 1 s read timeout, together past it), is answered: the timeout is per wait."""
    body = form(email="nobody.slow@example.com", locale="en")
    data = fc.request_bytes(served.env("forgot", "POST", body), body)
    pauses_at = {len(data) // 4, len(data) // 2}
    started = time.monotonic()
    with fc.connect(served.address) as sock:
        for i in range(len(data)):
            sock.send(data[i:i + 1])
            time.sleep(0.6 if i in pauses_at else 0.001)
        out, _, _, proto = fc.read_response(fc.Records(sock))
    elapsed = time.monotonic() - started
    status, headers, _ = fc.split_http(out)
    assert proto == fc.REQUEST_COMPLETE and status == 303 and location_path(headers) == "/forgot-sent.html"
    assert elapsed > READ_TIMEOUT, f"the trickle took {elapsed:.2f}s: it should outlast one read timeout"


def test_stalled_client_is_cut_off_while_another_connection_is_answered(served):
    """A client that stops mid-params holds its worker only for the read timeout (1 s): the
    connection is closed within a few seconds, and meanwhile the other worker answers."""
    pin_both_workers_warm(served)
    with fc.connect(served.address) as stalled:
        started = time.monotonic()
        stalled.sendall(fc.begin(1) + fc.record(fc.PARAMS, 1, fc.params(served.env("session"))))
        # Meanwhile, with one worker held, the other answers.
        for _ in range(3):
            assert answer(served.address, fc.request_bytes(served.env("reset", query="token=bogus")))[0] == 303
        assert time.monotonic() - started < READ_TIMEOUT, "too slow to prove anything"
        closed = closed_by_peer(stalled, within=8)
        total = time.monotonic() - started
    assert closed is not None, "the stalled connection was still open after 8 s"
    assert READ_TIMEOUT * 0.9 <= total <= READ_TIMEOUT + 2.5, f"closed after {total:.2f}s"
    assert "no bytes for 1000 ms mid-request" in served.serve.log()


def test_client_trickling_forever_is_cut_off_at_four_read_timeouts(served):
    """A client that sends one byte every 0.5 s (never a full read timeout apart) never
    finishes: the whole request is bounded at 4 × read_timeout, then the connection is closed."""
    pin_both_workers_warm(served)
    data = fc.request_bytes(served.env("session"))
    closed_at = None
    with fc.connect(served.address) as sock:
        started = time.monotonic()
        sock.settimeout(0.5)
        for i in range(len(data) - 1):  # never the last byte
            if time.monotonic() - started > 10:
                break
            try:
                sock.send(data[i:i + 1])
                got = sock.recv(100)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                got = b""
            assert got == b"", f"an answer to an unfinished request: {got!r}"
            closed_at = time.monotonic() - started
            break
    assert closed_at is not None, "the trickling connection was never closed"
    assert 4 * READ_TIMEOUT - 0.2 <= closed_at <= 4 * READ_TIMEOUT + 2, f"closed after {closed_at:.2f}s"
    # The log names the cut (as "no bytes for 1000 ms" when the last wait was shortened to the
    # request's remaining time, which is what usually ends it).
    assert re.search(r"fastcgi: refused: (request not complete within 4000 ms|no bytes for 1000 ms)", served.serve.log())


def login_through(served: Served, address: str, password: str) -> str:
    """Logs in by a POST to the worker (body in small STDIN records); the session cookie."""
    body = form(email=address, password=password, locale="en")
    env = served.env("login", "POST", body)
    data = fc.begin(1) + fc.stream(fc.PARAMS, 1, fc.params(env)) + in_small_records(fc.STDIN, 1, body, 7)
    out, _, _, proto = roundtrip(served.address, data)
    status, headers, _ = fc.split_http(out)
    assert proto == fc.REQUEST_COMPLETE and status == 303 and location_path(headers) == "/members/", (status, headers)
    value = session_cookie(set_cookies(out))
    assert value, set_cookies(out)
    return value


def authorize(served: Served, request_uri: str, cookie: str | None = None, apache_role: str | None = None):
    """An AUTHORIZER request for a members URL (no body), as lighttpd sends it, or with
    `apache_role` as Apache does (mod_authnz_fcgi: FCGI_APACHE_ROLE=AUTHENTICATOR)."""
    env = {"REQUEST_METHOD": "GET", "REQUEST_URI": request_uri, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
           "REMOTE_ADDR": "192.0.2.1", "HTTP_HOST": "127.0.0.1", "LATCHKEY_CONFIG": str(served.site.config)}
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    if apache_role is not None:
        env["FCGI_APACHE_ROLE"] = apache_role
    data = fc.begin(1, role=fc.AUTHORIZER) + fc.stream(fc.PARAMS, 1, fc.params(env))
    return answer(served.address, data)


def test_authorizer_without_session_sends_to_login_with_next(served):
    """Role AUTHORIZER without a cookie (or with a made-up one): 303 to the login page, with
    next= the REQUEST_URI that was asked for."""
    wanted = "/members/lessons/two.html?part=3"
    for cookie in (None, "lk_session=" + "A" * 43):
        status, headers, _ = authorize(served, wanted, cookie)
        assert status == 303, (status, headers)
        where = urllib.parse.urlsplit(headers["location"])
        assert where.path == "/login.session-expired.html", headers["location"]
        assert urllib.parse.parse_qs(where.query).get("next") == [wanted], headers["location"]
        assert "variable-latchkey_person" not in headers


def test_authorizer_with_session_admits_and_names_the_person(served):
    """A customer with access logs in through the worker; with that session cookie the
    authorizer answers 200 (lighttpd's form), and to Apache's authenticator (mod_authnz_fcgi)
    200 with Variable-LATCHKEY_PERSON = the person's id; the responder `session` check says
    204. Once the access is revoked, the same cookie is not admitted."""
    address = "member.fcgi@example.com"
    add_customer(served.site, address, PASSWORD, offer="gold")
    person = site_sql(served.site, f"SELECT id FROM person WHERE email = '{address}'")[0]["id"]
    cookie = "lk_session=" + login_through(served, address, PASSWORD)

    status, headers, body = authorize(served, "/members/", cookie)
    assert status == 200 and body == b"", (status, headers, body[:200])
    assert "location" not in headers
    status, headers, body = authorize(served, "/members/", cookie, apache_role="AUTHENTICATOR")
    assert status == 200, (status, headers)
    assert headers.get("variable-latchkey_person") == str(person), headers
    assert body == b""
    status, _, _ = answer(served.address, fc.request_bytes(served.env("session", cookie=cookie)))
    assert status == 204

    # Revoke the access: the same (live) cookie no longer opens the members area.
    admin_ok(served.site, "access", "revoke", address, "gold")
    status, headers, _ = authorize(served, "/members/", cookie, apache_role="AUTHENTICATOR")
    assert status == 303 and "variable-latchkey_person" not in headers, (status, headers)
    assert location_path(headers) in ("/login.session-expired.html", "/account.no-access.html"), headers


@pytest.mark.parametrize("how", ["unknown role", "abort"])
def test_connection_without_keep_conn_is_closed_after_a_refused_or_aborted_request(served, how):
    """FastCGI §5.1: without FCGI_KEEP_CONN the application closes the connection after
    responding to the request, including an END_REQUEST that refuses or aborts it."""
    if how == "unknown role":
        data = fc.begin(1, role=fc.FILTER)
    else:
        data = fc.begin(1) + fc.stream(fc.PARAMS, 1, fc.params(served.env("session"))) + fc.record(fc.ABORT_REQUEST, 1)
    with fc.connect(served.address) as sock:  # closing it at the end frees the worker it holds
        sock.sendall(data)
        rtype, rid, _ = fc.Records(sock).next()
        assert (rtype, rid) == (fc.END_REQUEST, 1)
        assert closed_by_peer(sock, within=2) is not None, f"{how} without FCGI_KEEP_CONN: still open 2 s after END_REQUEST"


def test_fresh_worker_already_uses_the_configured_read_timeout(latchkey_path):
    """A stalled client as the very first connection of a new worker is cut off after the
    site's read_timeout (1 s), not the built-in default."""
    site = Site.create({"fastcgi": {"read_timeout": "1s"}}, build=False)
    runtime = web_owned_tempdir("latchkey-fresh-")
    address = f"unix:{runtime}/latchkey.sock"
    serve = Serve(site, address, "--workers", "1")
    try:
        serve.wait_listening(address)
        with fc.connect(address) as stalled:
            started = time.monotonic()
            stalled.sendall(fc.begin(1) + fc.record(fc.PARAMS, 1, fc.params(fcgi_env(site, "session"))))
            closed = closed_by_peer(stalled, within=4)
        assert closed is not None, f"still open {time.monotonic() - started:.1f}s after the stall (read_timeout 1s)"
    finally:
        assert serve.stop() == 0
        serve.cleanup()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)
        site.remove()


def test_a_socket_left_in_a_root_owned_folder_is_replaced_by_the_next_start(latchkey_path):
    """Started by root with --user, the supervisor cannot remove its socket from a folder only
    root may write once it has dropped to that user: it says so, and the next start replaces
    the stale socket and serves (systemd's socket unit has none of this)."""
    site = Site.create({}, build=False)
    runtime = served_tempdir("latchkey-rootdir-")  # root's, 0755
    address = f"unix:{runtime}/latchkey.sock"
    serve = Serve(site, address, "--workers", "1")
    again = None
    try:
        serve.wait_listening(address)
        assert serve.stop() == 0, serve.log()
        assert "the next start replaces it" in serve.log(), serve.log()
        again = Serve(site, address, "--workers", "1")
        again.wait_listening(address)
        status, _, _ = answer(address, fc.request_bytes({"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/cgi-bin/session",
                                                          "REMOTE_ADDR": "127.0.0.1"}))
        assert status == 401
    finally:
        serve.cleanup()
        if again:
            again.cleanup()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)
        site.remove()


# --- lifecycle behind nginx ---------------------------------------------------------------------
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


def test_rolling_restarts_under_load_lose_no_request(latchkey_path):
    """1500 mixed requests through nginx on 8 threads while the supervisor gets SIGHUP twice:
    every answer is the expected one (no 5xx, no refused connection), afterwards every worker is
    a new process, and the database is sound."""
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
        assert integrity_check(srv.site) == "ok"


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


# --- the command line and systemd ---------------------------------------------------------------
def test_webserver_systemd_prints_socket_and_service_units(default_site):
    """`latchkey webserver systemd` prints a socket unit (the socket, owned by www-data) and a
    service unit that runs `latchkey serve` for this site and reloads with SIGHUP."""
    result = default_site.latchkey("webserver", "systemd")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    socket_unit, _, service_unit = text.partition("[Service]")
    assert "[Socket]" in socket_unit
    assert re.search(r"^ListenStream=/\S+\.sock$", socket_unit, re.M), socket_unit
    assert re.search(r"^SocketUser=www-data$", socket_unit, re.M)
    exec_start = re.search(r"^ExecStart=(\S+) serve\b(.*)$", service_unit, re.M)
    assert exec_start, service_unit
    assert os.access(exec_start.group(1), os.X_OK), exec_start.group(1)
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", service_unit, re.M), service_unit
    assert f"LATCHKEY_CONFIG={default_site.config}" in service_unit

    custom = default_site.latchkey("webserver", "systemd", "--listen", "unix:/run/lk-test/other.sock", "--user", "nobody")
    assert custom.returncode == 0, custom.stderr
    assert re.search(r"^ListenStream=/run/lk-test/other\.sock$", custom.stdout, re.M)
    assert re.search(r"^SocketUser=nobody$", custom.stdout, re.M)


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root")
def test_serve_as_root_without_user_is_refused(default_site):
    """As root without --user, `latchkey serve` refuses at once with one line, exit 1, and
    binds nothing."""
    folder = served_tempdir("latchkey-noroot-")
    try:
        started = time.monotonic()
        result = run_latchkey("serve", "--listen", f"unix:{folder}/s.sock", config=default_site.config, timeout=20)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "--user" in lines[0], result.stderr
        assert result.stdout == ""
        assert time.monotonic() - started < 10
        assert not (folder / "s.sock").exists()
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.mark.parametrize("listen", ["garbage", "127.0.0.1:notaport", "127.0.0.1:0", "127.0.0.1:99999",
                                    "999.0.0.1:9000", "localhost", "unix:FILE", "unix:/no/such/folder/s.sock"])
def test_serve_with_a_bad_listen_fails_cleanly(default_site, listen):
    """`--listen` that is no address (or a regular file, or a folder that does not exist):
    one line naming the problem, exit 1, and the file is untouched."""
    folder = served_tempdir("latchkey-badlisten-")
    try:
        plain = folder / "plain.txt"
        plain.write_text("not a socket\n")
        value = listen.replace("FILE", str(plain))
        result = run_latchkey("serve", "--listen", value, "--user", WEB_USER, config=default_site.config, timeout=20)
        assert result.returncode == 1, (value, result.returncode, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Fatal error" not in result.stderr and result.stdout == ""
        assert plain.read_text() == "not a socket\n"
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_systemd_style_start_with_the_socket_on_descriptor_3(latchkey_path):
    """As systemd starts it: a listening unix socket made by the caller on descriptor 3,
    LISTEN_FDS=1 and LISTEN_PID=<serve's pid>, no --listen. Requests on that socket are
    answered, and SIGTERM ends it with 0 (the socket is the caller's, so it stays)."""
    site = Site.create({}, build=False)
    runtime = web_owned_tempdir("latchkey-systemd-")
    path = runtime / "latchkey.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    serve = None
    try:
        listener.bind(str(path))
        listener.listen(64)
        serve = Serve(site, None, "--workers", "2", pass_socket=listener)
        address = f"unix:{path}"
        serve.wait_listening(address)
        assert "the socket systemd passed" in poll(serve.log, lambda text: "latchkey serve:" in text)
        poll(lambda: len(worker_pids(serve.proc.pid)) == 2, timeout=10, what="2 workers")
        for _ in range(3):
            status, headers, _ = answer(address, fc.request_bytes(fcgi_env(site, "reset", query="token=bogus")))
            assert status == 303 and location_path(headers) == "/expired.html", (status, headers)
        assert answer(address, fc.request_bytes(fcgi_env(site, "session")))[0] == 401
        assert serve.stop() == 0, serve.log()
        assert path.exists(), "the supervisor removed a socket it did not make"
    finally:
        listener.close()
        if serve is not None:
            serve.cleanup()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)
        site.remove()


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
