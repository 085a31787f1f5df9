"""The members gate made fit for video (issue "members area at file speed", item 3), under
Apache and lighttpd, where the gate CGI serves the files, nginx, which serves them itself
behind `auth_request`, and every FastCGI kind (servers.FASTCGI_KINDS), where the server sends
members_dir itself once `session` has said yes as an authorizer or access checker: single byte
ranges (206, 416, If-Range), validators with 304s, HEAD, files far larger than the old 32 MiB
limit streamed whole or in part, video and audio types, `Cache-Control: private, no-store`,
and paths that try to leave the members folder, or reach it without a session, refused.

Where a server's own file handling differs from the gate's and both are valid HTTP (RFC 9110),
the check names the kind: Apache and lighttpd send a 416 without the Content-Range the RFC only
recommends (SHOULD, §15.5.17), and Apache ignores the unsatisfiable `bytes=-0` (a server MAY
ignore Range, §14.2) where the others answer 416.
"""
from __future__ import annotations

import hashlib
import urllib.parse

import pytest

from memberfiles import an_hour_old, get, part, pattern_file, viewer_cookie
from servers import FASTCGI_KINDS, running

PASSWORD = "members gate passphrase"
LARGE = 48 * 1024 * 1024  # past the old limit


@pytest.fixture(scope="module", params=["apache", "lighttpd", "nginx", *FASTCGI_KINDS])
def server(request, latchkey_path):
    with running(request.param, {}, offer="gold") as srv:
        members = srv.site.dir / "members"
        (members / "lessons").mkdir()
        video = members / "lessons" / "intro.mp4"
        pattern_file(video, LARGE)
        (members / "lessons" / "notes.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n")
        an_hour_old(video, members / "lessons" / "notes.vtt")
        srv.cookie = viewer_cookie(srv, PASSWORD)
        srv.video = video
        yield srv


def expected(server, start, end):
    return part(server.video, start, end)


def test_a_large_file_is_streamed_whole(server):
    answer = get(server, "/members/lessons/intro.mp4")
    assert answer.status == 200 and answer.headers["content-type"] == "video/mp4"
    assert len(answer.body) == LARGE
    assert hashlib.sha256(answer.body).hexdigest() == hashlib.sha256(server.video.read_bytes()).hexdigest()
    assert answer.headers.get("accept-ranges") == "bytes"


@pytest.mark.parametrize("header,start,end", [("bytes=0-1023", 0, 1024), ("bytes=1000-1999", 1000, 2000),
                                              (f"bytes={LARGE - 5000}-", LARGE - 5000, LARGE), ("bytes=-700", LARGE - 700, LARGE),
                                              (f"bytes=30000000-{LARGE + 99}", 30000000, LARGE)])
def test_a_range_is_answered_206_with_exactly_those_bytes(server, header, start, end):
    answer = get(server, "/members/lessons/intro.mp4", Range=header)
    assert answer.status == 206, (answer.status, answer.headers)
    assert answer.headers["content-range"] == f"bytes {start}-{end - 1}/{LARGE}"
    assert answer.body == expected(server, start, end)


# Apache sending members_dir itself (FastCGI mode, either way).
APACHE_SENDS = ("apache-fastcgi", "apache-fcgid")
# Servers whose own 416 carries no Content-Range (RFC 9110 §15.5.17: SHOULD, not MUST).
NO_416_CONTENT_RANGE = (*APACHE_SENDS, "lighttpd-fastcgi")


@pytest.mark.parametrize("header", [f"bytes={LARGE}-", f"bytes={LARGE + 10}-{LARGE + 20}", "bytes=-0"])
def test_a_range_past_the_end_is_416(server, header):
    answer = get(server, "/members/lessons/intro.mp4", Range=header)
    if header == "bytes=-0" and server.kind in APACHE_SENDS:
        # Apache takes a zero suffix for no valid range and ignores the header: the whole file.
        assert answer.status == 200 and len(answer.body) == LARGE, (answer.status, answer.headers)
        return
    assert answer.status == 416, (answer.status, answer.headers)
    assert len(answer.body) < 4096 and answer.body[:256] != expected(server, 0, 256)
    if server.kind in NO_416_CONTENT_RANGE:
        assert answer.headers.get("content-range", f"bytes */{LARGE}") == f"bytes */{LARGE}"
    else:
        assert answer.headers["content-range"] == f"bytes */{LARGE}"


def test_validators_give_304_and_a_changed_file_does_not(server):
    first = get(server, "/members/lessons/notes.vtt")
    assert first.status == 200 and first.headers["content-type"].startswith("text/vtt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert get(server, "/members/lessons/notes.vtt", **{"If-None-Match": etag}).status == 304
    assert get(server, "/members/lessons/notes.vtt", **{"If-Modified-Since": modified}).status == 304
    # If-Range with the version held: the range; with another, the whole file.
    held = get(server, "/members/lessons/intro.mp4", "HEAD").headers["etag"]
    assert get(server, "/members/lessons/intro.mp4", Range="bytes=0-9", **{"If-Range": held}).status == 206
    whole = get(server, "/members/lessons/intro.mp4", Range="bytes=0-9", **{"If-Range": '"another-version"'})
    assert whole.status == 200 and len(whole.body) == LARGE


def test_head_says_what_get_would_send_and_sends_nothing(server):
    answer = get(server, "/members/lessons/intro.mp4", "HEAD")
    assert answer.status == 200 and answer.body == b"" and answer.headers["etag"] and answer.headers["content-type"] == "video/mp4"
    # Apache recomputes the length of a HEAD answer's (empty) body and drops the header; when
    # a server passes it on, it is the file's.
    assert int(answer.headers.get("content-length", LARGE)) == LARGE


@pytest.mark.parametrize("how", ["whole", "range", "304", "HEAD"])
def test_members_files_are_never_kept_by_a_shared_cache(server, how):
    path, method, headers = "/members/lessons/intro.mp4", "GET", {}
    if how == "range":
        headers = {"Range": "bytes=0-99"}
    elif how == "304":
        path = "/members/lessons/notes.vtt"
        headers = {"If-None-Match": get(server, path, "HEAD").headers["etag"]}
    elif how == "HEAD":
        method = "HEAD"
    answer = get(server, path, method, **headers)
    assert answer.status == {"whole": 200, "range": 206, "304": 304, "HEAD": 200}[how], (answer.status, answer.headers)
    directives = {d.strip().lower() for d in answer.headers.get("cache-control", "").split(",")}
    assert {"private", "no-store"} <= directives, answer.all("cache-control")


def test_without_a_session_nothing_is_served(server):
    answer = server.request("GET", "/members/lessons/intro.mp4", headers={"Range": "bytes=0-99"})
    assert answer.status == 303 and len(answer.body) < 2000
    # To the login page, remembering the page for afterwards: in the query and in lk_next.
    location = urllib.parse.urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == server.url and location.path.startswith("/login"), location
    assert urllib.parse.parse_qs(location.query)["next"] == ["/members/lessons/intro.mp4"]
    remembered = [c.split(";")[0].split("=", 1)[1] for c in answer.all("set-cookie") if c.startswith("lk_next=")]
    assert [urllib.parse.unquote(v) for v in remembered] == ["/members/lessons/intro.mp4"], answer.all("set-cookie")


@pytest.mark.parametrize("how", ["GET", "HEAD", "range", "304"])
def test_the_authorizers_variables_stay_on_the_server(server, how):
    headers = {"Range": "bytes=0-9"} if how == "range" else {}
    if how == "304":
        headers = {"If-None-Match": get(server, "/members/lessons/notes.vtt", "HEAD").headers["etag"]}
    answer = get(server, "/members/lessons/notes.vtt", "HEAD" if how == "HEAD" else "GET", **headers)
    assert answer.status in (200, 206, 304), (answer.status, answer.headers)
    assert not [name for name, _ in answer.header_list if name.lower().startswith("variable-")], answer.header_list


@pytest.mark.parametrize("path", ["/members/lessons/notes.vtt", "/members/lessons/intro.mp4?x=1", "/%6dembers/lessons/intro.mp4",
                                  "//members/lessons/intro.mp4", "/members//lessons/intro.mp4", "/members/./lessons/intro.mp4",
                                  "/elsewhere/../members/lessons/intro.mp4", "/members%2flessons/intro.mp4",
                                  "/members/lessons%2fintro.mp4", "/members/lessons/intro.mp4/", "/MEMBERS/lessons/intro.mp4",
                                  "/_latchkey_members/lessons/intro.mp4", "/members/", "/members/index.html"])
def test_no_spelling_of_a_members_url_serves_a_file_without_a_session(server, path):
    answer = server.request("GET", path, headers={"Range": "bytes=0-99"})
    assert answer.status in (303, 404), (answer.status, answer.headers)
    assert expected(server, 0, 100) not in answer.body and b"WEBVTT" not in answer.body and len(answer.body) < 2000
    if answer.status == 303:
        assert urllib.parse.urlsplit(answer.headers["location"]).path.startswith("/login"), answer.headers["location"]


@pytest.mark.parametrize("with_session", [True, False], ids=["session", "no-session"])
def test_the_members_url_without_its_slash_serves_nothing(server, with_session):
    headers = {"Cookie": server.cookie} if with_session else {}
    answer = server.request("GET", "/members", headers=headers)
    assert answer.status in (301, 302, 303, 307, 308, 404), (answer.status, answer.headers)
    assert not answer.body.startswith(b"\x7fELF") and len(answer.body) < 4096, (answer.status, len(answer.body))
    if answer.status != 404:
        assert urllib.parse.urlsplit(answer.headers["location"]).path in ("/members/", "/login.session-expired.html"), answer.headers


ESCAPES = ["/members/lessons/../../latchkey.json", "/members/%2e%2e/latchkey.json", "/members/lessons/..%2f..%2flatchkey.json",
           "/members/%2e%2e%2flatchkey.json", "/members/lessons/%2e%2e/%2e%2e/latchkey.json", "/members/.%2e/latchkey.json",
           "/members/%2e%2e/var/latchkey.sqlite3", "/members/..%5clatchkey.json", "/members/%252e%252e/latchkey.json"]


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_out_of_the_members_folder_are_refused(server, path):
    answer = get(server, path, Range="bytes=0-99")
    assert answer.status in (400, 403, 404), (answer.status, answer.headers)
    assert b"base_url" not in answer.body and b"SQLite format" not in answer.body


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_out_of_the_members_folder_are_refused_without_a_session_too(server, path):
    answer = server.request("GET", path, headers={"Range": "bytes=0-99"})
    assert answer.status in (303, 400, 403, 404), (answer.status, answer.headers)
    assert b"base_url" not in answer.body and b"SQLite format" not in answer.body
