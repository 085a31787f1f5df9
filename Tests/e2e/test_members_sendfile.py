"""`members_sendfile`: the members gate checks the session and the path, then hands the file back
to the web server instead of sending it itself.

- `x-sendfile` under lighttpd (mod_cgi): `latchkey webserver lighttpd` enables `cgi.x-sendfile`
  confined to members_dir, the gate answers `X-Sendfile: PATH` with no body, and lighttpd sends
  the file, with its own ranges and validators. A 48 MiB file arrives whole and by range; the
  refusals (no session, a path out of the folder) are the gate's as before; the header with the
  file's path never reaches the client.
- `x-accel-redirect`, the gate run directly (nginx never routes /members/ to the gate, so only the
  CGI's answer can be checked): `X-Accel-Redirect: /_latchkey_members/<escaped path>`, no
  Content-Length (nginx supplies the file's), and 303 without a session.
- Either mode under a server whose generated config cannot honour it must not answer members
  files with empty bodies.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.parse

import pytest

from lkserver import CGI_DIR, Site, add_customer, run_cgi, run_latchkey
from memberfiles import an_hour_old, get, part, pattern_file, viewer_cookie
from servers import running

PASSWORD = "members sendfile passphrase"
LARGE = 48 * 1024 * 1024
GATE_ETAG = re.compile(r'^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$')  # MembersFile.etag: inode-size-mtime


# --- x-sendfile under lighttpd ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def lighttpd(latchkey_path):
    with running("lighttpd", {"members_sendfile": "x-sendfile"}, offer="gold") as srv:
        members = srv.site.dir / "members"
        (members / "lessons").mkdir()
        video = members / "lessons" / "intro.mp4"
        pattern_file(video, LARGE)
        (members / "a b&c.txt").write_text("named with a space and an ampersand\n")
        an_hour_old(video, members / "a b&c.txt")
        srv.cookie = viewer_cookie(srv, PASSWORD)
        srv.video = video
        yield srv


def piece(srv, start, end):
    return part(srv.video, start, end)


def no_path_leaks(srv, answer):
    """Neither the hand-back header nor the site's folder on disk reaches the client."""
    assert "x-sendfile" not in answer.headers and "x-accel-redirect" not in answer.headers, answer.header_list
    assert not any(str(srv.site.dir) in value for _, value in answer.header_list), answer.header_list


def test_the_lighttpd_config_hands_members_files_to_lighttpd(lighttpd):
    text = lighttpd.config_text
    assert 'cgi.x-sendfile = "enable"' in text
    assert f'cgi.x-sendfile-docroot = ("{lighttpd.site.dir / "members"}/")' in text


def test_a_large_file_is_sent_whole_by_lighttpd(lighttpd):
    answer = get(lighttpd, "/members/lessons/intro.mp4")
    assert answer.status == 200 and answer.headers["content-type"] == "video/mp4", (answer.status, answer.headers)
    assert len(answer.body) == LARGE
    assert hashlib.sha256(answer.body).hexdigest() == hashlib.sha256(lighttpd.video.read_bytes()).hexdigest()
    no_path_leaks(lighttpd, answer)
    # The validators and Accept-Ranges are lighttpd's (the gate sends none in this mode).
    assert answer.headers.get("accept-ranges") == "bytes"
    assert answer.headers.get("etag") and not GATE_ETAG.match(answer.headers["etag"]), answer.headers
    assert int(answer.headers["content-length"]) == LARGE
    directives = {d.strip() for d in answer.headers.get("cache-control", "").split(",")}
    assert {"private", "no-store"} <= directives, answer.all("cache-control")


def test_a_name_needing_escapes_is_sent(lighttpd):
    answer = get(lighttpd, "/members/a%20b%26c.txt")
    assert answer.status == 200 and answer.body == b"named with a space and an ampersand\n", (answer.status, answer.headers)
    no_path_leaks(lighttpd, answer)


@pytest.mark.parametrize("header,start,end", [("bytes=0-1023", 0, 1024), ("bytes=1000-1999", 1000, 2000),
                                              (f"bytes={LARGE - 5000}-", LARGE - 5000, LARGE), ("bytes=-700", LARGE - 700, LARGE),
                                              (f"bytes=30000000-{LARGE + 99}", 30000000, LARGE)])
def test_lighttpd_answers_a_range_with_exactly_those_bytes(lighttpd, header, start, end):
    answer = get(lighttpd, "/members/lessons/intro.mp4", Range=header)
    assert answer.status == 206, (answer.status, answer.headers)
    assert answer.headers["content-range"] == f"bytes {start}-{end - 1}/{LARGE}"
    assert answer.body == piece(lighttpd, start, end)
    no_path_leaks(lighttpd, answer)


def test_a_range_past_the_end_is_416(lighttpd):
    answer = get(lighttpd, "/members/lessons/intro.mp4", Range=f"bytes={LARGE}-")
    assert answer.status == 416 and len(answer.body) < 4096, (answer.status, answer.headers)
    # lighttpd's own 416 carries no Content-Range (RFC 9110 §15.5.17: SHOULD); when it does, the size.
    assert answer.headers.get("content-range", f"bytes */{LARGE}") == f"bytes */{LARGE}"
    no_path_leaks(lighttpd, answer)


def test_validators_if_range_and_head_are_lighttpds(lighttpd):
    first = get(lighttpd, "/members/lessons/intro.mp4", "HEAD")
    assert first.status == 200 and first.body == b"" and int(first.headers["content-length"]) == LARGE, first.headers
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    no_path_leaks(lighttpd, first)
    assert get(lighttpd, "/members/lessons/intro.mp4", **{"If-None-Match": etag}).status == 304
    assert get(lighttpd, "/members/lessons/intro.mp4", **{"If-Modified-Since": modified}).status == 304
    assert get(lighttpd, "/members/lessons/intro.mp4", Range="bytes=0-9", **{"If-Range": etag}).status == 206
    whole = get(lighttpd, "/members/lessons/intro.mp4", Range="bytes=0-9", **{"If-Range": '"another-version"'})
    assert whole.status == 200 and len(whole.body) == LARGE


def test_without_a_session_the_gate_still_refuses(lighttpd):
    answer = lighttpd.request("GET", "/members/lessons/intro.mp4", headers={"Range": "bytes=0-99"})
    assert answer.status == 303 and len(answer.body) < 2000, (answer.status, answer.headers)
    location = urllib.parse.urlsplit(answer.headers["location"])
    assert location.path.startswith("/login") and urllib.parse.parse_qs(location.query)["next"] == ["/members/lessons/intro.mp4"]
    assert piece(lighttpd, 0, 100) not in answer.body
    no_path_leaks(lighttpd, answer)


@pytest.mark.parametrize("path", ["/members/lessons/../../latchkey.json", "/members/%2e%2e/latchkey.json",
                                  "/members/lessons/..%2f..%2flatchkey.json", "/members/%2e%2e/var/latchkey.sqlite3"])
def test_paths_out_of_the_members_folder_are_refused(lighttpd, path):
    answer = get(lighttpd, path, Range="bytes=0-99")
    assert answer.status in (400, 403, 404), (answer.status, answer.headers)
    assert b"base_url" not in answer.body and b"SQLite format" not in answer.body
    no_path_leaks(lighttpd, answer)


# --- x-accel-redirect: the gate's own answer ------------------------------------------------------
@pytest.fixture(scope="module")
def accel_site(latchkey_path):
    site = Site.create({"members_sendfile": "x-accel-redirect"}, build=True)
    try:
        members = site.dir / "members"
        (members / "a b&c.txt").write_text("hello\n")
        (members / "lessons").mkdir()
        (members / "lessons" / "intro 1 ü.mp4").write_bytes(b"\0" * 4096)
        for folder, _, files in os.walk(members):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        add_customer(site, "viewer@example.com", PASSWORD, offer="gold")
        login = run_cgi(site, "login", body=urllib.parse.urlencode({"email": "viewer@example.com", "password": PASSWORD, "locale": "en"}))
        assert login.status == 303, login
        site.cookie = [h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session=")][0]
        yield site
    finally:
        site.remove()


def gate(site, path_info, cookie=None, method="GET", **extra):
    return run_cgi(site, "members", method, b"", content_type=None, content_length=None, cookie=cookie,
                   extra={"PATH_INFO": path_info, "SCRIPT_NAME": "/members", "REQUEST_URI": "/members" + urllib.parse.quote(path_info),
                          **extra})


@pytest.mark.parametrize("path_info,uri", [("/a b&c.txt", "/_latchkey_members/a%20b%26c.txt"),
                                           ("/lessons/intro 1 ü.mp4", "/_latchkey_members/lessons/intro%201%20%C3%BC.mp4")])
def test_x_accel_redirect_names_the_escaped_path(accel_site, path_info, uri):
    answer = gate(accel_site, path_info, cookie=accel_site.cookie)
    assert answer.returncode == 0 and answer.status == 200, answer
    assert answer.all("x-accel-redirect") == [uri]
    assert "content-length" not in answer.headers, answer.header_list
    assert answer.body == b""
    assert "x-sendfile" not in answer.headers and "etag" not in answer.headers
    assert answer.headers["content-type"].split(";")[0] in ("text/plain", "video/mp4")
    assert {"private", "no-store"} <= {d.strip() for d in answer.headers["cache-control"].split(",")}


def test_x_accel_redirect_ignores_the_range_nginx_will_answer(accel_site):
    answer = gate(accel_site, "/a b&c.txt", cookie=accel_site.cookie, HTTP_RANGE="bytes=0-1")
    assert answer.status == 200 and answer.all("x-accel-redirect") == ["/_latchkey_members/a%20b%26c.txt"], answer
    assert "content-range" not in answer.headers and answer.body == b""


def test_x_accel_redirect_without_a_session_is_303(accel_site):
    answer = gate(accel_site, "/a b&c.txt")
    assert answer.status == 303, answer
    assert "x-accel-redirect" not in answer.headers and answer.body[:6] != b"hello\n"
    location = urllib.parse.urlsplit(answer.headers["location"])
    assert location.path.startswith("/login") and urllib.parse.parse_qs(location.query)["next"] == ["/members/a b&c.txt"]


@pytest.mark.parametrize("path_info", ["/../latchkey.json", "/lessons/../../latchkey.json", "/.hidden", "/missing.txt", "/lessons/..\\..\\latchkey.json"])
def test_x_accel_redirect_never_names_a_path_out_of_the_folder(accel_site, path_info):
    answer = gate(accel_site, path_info, cookie=accel_site.cookie)
    assert answer.status in (400, 403, 404), answer
    assert "x-accel-redirect" not in answer.headers and b"base_url" not in answer.body


# --- a mode the server's config cannot honour ------------------------------------------------------
@pytest.mark.parametrize("kind,mode", [("apache", "x-sendfile"), ("lighttpd", "x-accel-redirect")])
def test_a_mode_the_server_cannot_honour_never_sends_empty_files(latchkey_path, kind, mode):
    # Refusing the combination is an answer too: `latchkey webserver KIND` failing.
    probe = Site.create({"members_sendfile": mode}, build=False)
    try:
        refused = run_latchkey("webserver", kind, "--standalone", "--listen", "127.0.0.1:8",
                               "--runtime-dir", probe.top, "--cgi-dir", CGI_DIR, config=probe.config)
    finally:
        probe.remove()
    if refused.returncode != 0:
        return
    with running(kind, {"members_sendfile": mode}, offer="gold") as srv:
        (srv.site.dir / "members" / "lesson.txt").write_text("the lesson\n")
        os.chmod(srv.site.dir / "members" / "lesson.txt", 0o644)
        answer = srv.request("GET", "/members/lesson.txt", headers={"Cookie": viewer_cookie(srv, PASSWORD)})
        assert answer.status == 200 and answer.body == b"the lesson\n", (answer.status, answer.header_list, answer.body)
        no_path_leaks(srv, answer)
