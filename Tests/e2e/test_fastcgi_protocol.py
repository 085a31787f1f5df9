"""The FastCGI responder at the protocol level, against one `latchkey serve --workers 2` for
the module (its site's `fastcgi.read_timeout` 1 s): management records, roles, a multiplexed
second request, kept connections, malformed and oversized params, bodies longer or shorter
than declared, slow, stalled and trickling clients, aborts, the authorizer role; and the
supervisor's socket. Everything listens on unix sockets; every process is stopped at teardown.
"""
from __future__ import annotations

import re
import socket
import struct
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import fcgiclient as fc
from lkserver import Site, add_customer, admin_ok, poll, served_tempdir, site_sql
from fastcgi_support import (
    PASSWORD, READ_TIMEOUT, Serve, THROTTLES, answer, answer_of, closed_by_peer, fcgi_env, form,
    in_small_records, location_path, records_until_end, roundtrip, session_cookie, set_cookies,
    web_owned_tempdir, worker_pids,
)

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
