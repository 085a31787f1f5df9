"""The members gate made fit for video (issue "members area at file speed", item 3), under
Apache and lighttpd, where the gate CGI serves the files, and nginx, which serves them itself
behind `auth_request`: single byte ranges (206, 416, If-Range), validators with 304s, HEAD,
files far larger than the old 32 MiB limit streamed whole or in part, video and audio types,
and paths that try to leave the members folder refused.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from lkserver import add_customer
from servers import running

PASSWORD = "members gate passphrase"
LARGE = 48 * 1024 * 1024  # past the old limit


@pytest.fixture(scope="module", params=["apache", "lighttpd", "nginx"])
def server(request, latchkey_path):
    with running(request.param, {}, offer="gold") as srv:
        members = srv.site.dir / "members"
        (members / "lessons").mkdir()
        video = members / "lessons" / "intro.mp4"
        with open(video, "wb") as f:
            # A recognisable pattern, so any slice can be checked byte for byte.
            block = bytes(range(256)) * 4096
            for _ in range(LARGE // len(block)):
                f.write(block)
        (members / "lessons" / "notes.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n")
        os.chmod(video, 0o644)
        add_customer(srv.site, "viewer@example.com", PASSWORD, offer="gold")
        login = srv.post("/cgi-bin/login", {"email": "viewer@example.com", "password": PASSWORD, "locale": "en"})
        srv.cookie = [h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session=")][0]
        srv.video = video
        yield srv


def get(server, path, method="GET", **headers):
    return server.request(method, path, headers={"Cookie": server.cookie, **headers}, timeout=120)


def expected(server, start, end):
    with open(server.video, "rb") as f:
        f.seek(start)
        return f.read(end - start)


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


@pytest.mark.parametrize("header", [f"bytes={LARGE}-", f"bytes={LARGE + 10}-{LARGE + 20}", "bytes=-0"])
def test_a_range_past_the_end_is_416(server, header):
    answer = get(server, "/members/lessons/intro.mp4", Range=header)
    assert answer.status == 416 and answer.headers["content-range"] == f"bytes */{LARGE}"


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


def test_without_a_session_nothing_is_served(server):
    answer = server.request("GET", "/members/lessons/intro.mp4", headers={"Range": "bytes=0-99"})
    assert answer.status == 303 and len(answer.body) < 2000


@pytest.mark.parametrize("path", ["/members/lessons/../../latchkey.json", "/members/%2e%2e/latchkey.json", "/members/lessons/..%2f..%2flatchkey.json"])
def test_paths_out_of_the_members_folder_are_refused(server, path):
    answer = get(server, path, Range="bytes=0-99")
    assert answer.status in (400, 403, 404) and b"base_url" not in answer.body
