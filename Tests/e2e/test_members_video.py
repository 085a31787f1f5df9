"""A 1 GiB members video seeks in a real browser under every server kind: Apache and lighttpd
with the members gate CGI, nginx behind `auth_request`, and each FastCGI kind
(servers.FASTCGI_KINDS: the server sending members_dir itself once `session` has said yes).

The file is sparse (a 1 GiB hole with a distinct 64-byte marker at its start, its middle and its
end), so it costs nothing to make. One server per kind and one headless Chromium for the module,
logged in by putting the lk_session cookie from a POST to /cgi-bin/login onto the browser.

- A members page with `<video src="/members/big.mp4" preload="metadata">`: the browser's own
  Range request for the video must reach the server and be answered 206 (its access log). This
  runs first for each server, so the log holds no other request for big.mp4.
- `fetch()` with a Range header for each marker, from a members page: 206, the exact
  Content-Range and the marker's bytes. Members files carry no page policy of Latchkey's (its
  pages' CSP forbids media and fetches), so a course page may load its own media and scripts.

Needs: chromium, chromium-driver, selenium (see chrome.py).
"""
from __future__ import annotations

import os
import re
import time

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from chrome import chromium
from memberfiles import viewer_cookie
from servers import FASTCGI_KINDS, running

PASSWORD = "members video passphrase"
SIZE = 1 << 30
MARKERS = {offset: f"latchkey marker {name} @ {offset}".encode().ljust(64, b"#")
           for name, offset in (("start", 0), ("middle", 512 << 20), ("end", SIZE - 64))}
VIDEO_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lesson</title></head>' \
             '<body><video src="/members/big.mp4" preload="metadata" controls></video></body></html>\n'
# "GET /members/big.mp4 HTTP/1.1" 206: the same in Apache's, nginx's and lighttpd's formats.
LOGGED = re.compile(r'"GET /members/big\.mp4 HTTP/[0-9.]+" (\d{3}) ')

# Every answer to a members page there carries the CGI security headers' CSP
# (`default-src 'none'`, no media-src, no connect-src), so the page cannot load its own video.
@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module", params=["apache", "lighttpd", "nginx", *FASTCGI_KINDS])
def server(request, latchkey_path):
    with running(request.param, {}, offer="gold") as srv:
        members = srv.site.dir / "members"
        big = members / "big.mp4"
        with open(big, "wb") as f:
            f.truncate(SIZE)
            for offset, marker in MARKERS.items():
                f.seek(offset)
                f.write(marker)
        os.chmod(big, 0o644)
        assert big.stat().st_size == SIZE
        (members / "video.html").write_text(VIDEO_PAGE, encoding="utf-8")
        os.chmod(members / "video.html", 0o644)
        srv.session = viewer_cookie(srv, PASSWORD).split("=", 1)[1]
        yield srv


@pytest.fixture
def page(browser, server):
    """The shared browser, logged in on this server's origin, its console emptied."""
    browser.get(server.url + "/login.html")
    browser.delete_all_cookies()
    browser.add_cookie({"name": "lk_session", "value": server.session, "path": "/", "httpOnly": True, "sameSite": "Lax"})
    browser.get_log("browser")
    yield browser
    browser.get("about:blank")  # stops whatever the page was still loading


def big_mp4_statuses(server) -> list[str]:
    return LOGGED.findall(server.access_log())


def test_a_members_page_plays_the_video_by_range(page, server):
    before = len(big_mp4_statuses(server))
    page.get(server.url + "/members/video.html")
    assert page.current_url == server.url + "/members/video.html", page.current_url
    # Not a real MP4: the browser reads its first bytes, gives up, and says why.
    state = WebDriverWait(page, 15).until(lambda d: d.execute_script(
        "const v = document.querySelector('video');"
        "return (v.error || v.readyState > 0) ? {error: v.error && v.error.message, ready: v.readyState} : null;"))
    blocked = [e["message"] for e in page.get_log("browser") if "Content Security Policy" in e.get("message", "")]
    assert not blocked, blocked
    assert "URL safety check" not in (state["error"] or ""), state
    # lighttpd writes its access log in batches: wait for the line.
    deadline = time.monotonic() + 10
    while len(big_mp4_statuses(server)) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    statuses = big_mp4_statuses(server)[before:]
    assert statuses and statuses[0] == "206", (statuses, state, server.access_log()[-2000:])


@pytest.mark.parametrize("offset", sorted(MARKERS), ids=["start", "middle", "end"])
def test_the_browser_seeks_anywhere_in_the_1_gib_file(page, server, offset):
    page.get(server.url + "/members/index.html")
    assert page.current_url == server.url + "/members/index.html", page.current_url
    answer = page.execute_async_script("""
        const [range, done] = [arguments[0], arguments[arguments.length - 1]];
        fetch('/members/big.mp4', {headers: {Range: range}, cache: 'no-store'})
          .then(async r => done({status: r.status, url: r.url, redirected: r.redirected,
                                 contentRange: r.headers.get('content-range'),
                                 body: Array.from(new Uint8Array(await r.arrayBuffer()))}))
          .catch(e => done({error: String(e)}));""", f"bytes={offset}-{offset + 63}")
    assert "error" not in answer, answer
    assert answer["status"] == 206 and not answer["redirected"], {k: v for k, v in answer.items() if k != "body"}
    assert answer["contentRange"] == f"bytes {offset}-{offset + 63}/{SIZE}"
    assert bytes(answer["body"]) == MARKERS[offset]
