"""The same customer journeys under every supported web server: Apache (mod_cgid),
nginx + fcgiwrap (members area through `auth_request`) and lighttpd (mod_cgi, members gate CGI).

Each server kind gets one site and one server for this module (started from the config
`latchkey webserver KIND --standalone` prints, bound to 127.0.0.1, stopped at teardown); every
test uses its own customer addresses so tests stay independent. Redirects are never followed.
"""
from __future__ import annotations

import re
import sqlite3
import time
import urllib.parse
from pathlib import Path

import pytest

from lkserver import Site, deep_merge, wait_site_idle
from servers import FASTCGI_KINDS, SERVER_KINDS, running

HERE = Path(__file__).resolve().parent


import maildir as mail  # noqa: E402  (Tests/e2e/maildir.py)


PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
THIRD_PASSWORD = "third time lucky phrase"
MEMBERS_TEXT = "Welcome to the members area"
SECURITY_HEADERS = ("content-security-policy", "referrer-policy", "x-content-type-options")

# Generous throttles: these tests log in and ask for links many times from 127.0.0.1.
CONFIG = {"throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"},
                       "login_failures_per_ip": {"count": 100000, "window": "1h"}}}


@pytest.fixture(scope="module", params=SERVER_KINDS + FASTCGI_KINDS)
def srv(request, latchkey_path):
    """A started server of each kind, serving its own fresh site; stopped at teardown."""
    with running(request.param, deep_merge({}, CONFIG)) as server:
        yield server


# --- helpers --------------------------------------------------------------------------------
def admin(site, *args, input=None):
    result = site.latchkey(*args, input=input)
    site.chown_var()
    assert result.returncode == 0, f"latchkey {' '.join(map(str, args))} failed: {result.stdout}{result.stderr}"
    return result


_counter = iter(range(1, 10**6))


def new_customer(srv, password=PASSWORD) -> str:
    address = f"customer{next(_counter)}.{srv.kind}@example.com"
    admin(srv.site, "user", "add", address, "--no-email", "--offer", "members")
    admin(srv.site, "user", "set-password", address, input=password + "\n")
    return address


def cookie(resp, name: str) -> str | None:
    for header in resp.all("set-cookie"):
        first = header.split(";", 1)[0]
        key, _, value = first.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


def login(srv, address, password):
    return srv.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"})


def with_session(value) -> dict:
    return {"Cookie": f"lk_session={value}"}


def where(resp) -> str:
    return resp.headers.get("location", "")


def describe(srv, resp) -> str:
    return f"{srv.kind}: {resp.status} {resp.headers} {resp.text[:300]!r}\nerror log:\n{srv.error_log()[-3000:]}"


def messages_to(srv, address, count, timeout=10.0):
    box = mail.Mailbox(srv.site.var / "mail")
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in box.messages() if mail.recipient(m) == address]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{srv.kind}: expected {count} message(s) to {address} within {timeout}s, "
                                 f"found {[str(m['Subject']) for m in found]}\n{srv.error_log()[-2000:]}")
        time.sleep(0.05)


def assert_redirects_to_login(srv, resp):
    assert resp.status == 303, describe(srv, resp)
    location = urllib.parse.urlsplit(where(resp))
    assert location.path == "/login.session-expired.html", where(resp)
    assert location.netloc in ("", f"127.0.0.1:{srv.port}"), where(resp)
    assert urllib.parse.parse_qs(location.query).get("next") == ["/members/"], where(resp)
    assert MEMBERS_TEXT not in resp.text


# --- the journeys -----------------------------------------------------------------------------
def test_recovery_journey(srv):
    address = new_customer(srv)

    asked = srv.post("/cgi-bin/forgot", {"email": address, "locale": "en"})
    assert asked.status == 303, describe(srv, asked)
    assert where(asked) == srv.url + "/forgot-sent.html"
    assert "no-store" in asked.headers.get("cache-control", "")

    msg = messages_to(srv, address, 1)[0]
    token = mail.reset_token(msg, srv.url)

    shown = srv.get(f"/cgi-bin/reset?token={token}")
    assert shown.status == 303, describe(srv, shown)
    assert where(shown) == srv.url + "/reset.html"
    assert cookie(shown, "lk_reset") == token, shown.all("set-cookie")
    reset_cookie = [h for h in shown.all("set-cookie") if h.startswith("lk_reset=")][0]
    assert "path=/cgi-bin/reset" in reset_cookie.lower().replace(" ", ""), reset_cookie

    form = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "locale": "en"}
    done = srv.post("/cgi-bin/reset", form, headers={"Cookie": f"lk_reset={token}"})
    assert done.status == 303, describe(srv, done)
    assert where(done) == srv.url + "/reset-done.html"
    assert cookie(done, "lk_session") is None, "a reset must not log the person in"

    # The spent link now leads to expired.html, which offers to ask again.
    spent = srv.get(f"/cgi-bin/reset?token={token}")
    assert spent.status == 303 and where(spent) == srv.url + "/expired.html", describe(srv, spent)
    expired = srv.get("/expired.html")
    assert expired.status == 200, describe(srv, expired)
    assert re.search(r'<a [^>]*href="(/|{0}/)?forgot\.html"'.format(re.escape(srv.url)), expired.text), expired.text

    # The old password is gone; the new one opens the members area.
    old = login(srv, address, PASSWORD)
    assert old.status == 303 and where(old) == srv.url + "/login.invalid-login.html", describe(srv, old)
    assert cookie(old, "lk_session") is None
    new = login(srv, address, NEW_PASSWORD)
    assert new.status == 303 and where(new) == srv.url + "/members/", describe(srv, new)
    session = cookie(new, "lk_session")
    page = srv.get("/members/", headers=with_session(session))
    assert page.status == 200 and MEMBERS_TEXT in page.text, describe(srv, page)

    # The "password changed" notice went out too.
    notices = messages_to(srv, address, 2)
    assert str(notices[1]["Subject"]) == "Your password was changed"


def test_login_journey(srv):
    address = new_customer(srv)

    # No session: the members area sends the visitor to the login page, remembering the page.
    assert_redirects_to_login(srv, srv.get("/members/"))

    wrong = login(srv, address, "not the password")
    assert wrong.status == 303 and where(wrong) == srv.url + "/login.invalid-login.html", describe(srv, wrong)
    shown = srv.get("/login.invalid-login.html")
    assert shown.status == 200 and "don" in shown.text and "match" in shown.text

    resp = login(srv, address, PASSWORD)
    assert resp.status == 303, describe(srv, resp)
    assert where(resp) == srv.url + "/members/"
    session = cookie(resp, "lk_session")
    assert session and len(session) == 43, resp.all("set-cookie")

    page = srv.get("/members/", headers=with_session(session))
    assert page.status == 200, describe(srv, page)
    assert MEMBERS_TEXT in page.text
    assert "no-store" in page.headers.get("cache-control", ""), page.headers
    assert srv.get("/cgi-bin/session", headers=with_session(session)).status == 204

    # The account page changes the password and hands out a fresh session.
    form = {"current_password": PASSWORD, "new_password": THIRD_PASSWORD, "confirm_password": THIRD_PASSWORD,
            "locale": "en"}
    changed = srv.post("/cgi-bin/account", form, headers=with_session(session))
    assert changed.status == 303 and where(changed) == srv.url + "/account-done.html", describe(srv, changed)
    fresh = cookie(changed, "lk_session")
    assert fresh and fresh != session, changed.all("set-cookie")
    assert srv.get("/members/", headers=with_session(fresh)).status == 200

    # Log out: the cookie the browser held (or a thief copied) is dead on the server.
    out = srv.post("/cgi-bin/logout", {"locale": "en"}, headers=with_session(fresh))
    assert out.status == 303 and where(out) == srv.url + "/login.signed-out.html", describe(srv, out)
    assert cookie(out, "lk_session") == "", out.all("set-cookie")
    assert_redirects_to_login(srv, srv.get("/members/", headers=with_session(fresh)))
    assert srv.get("/cgi-bin/session", headers=with_session(fresh)).status == 401
    assert_redirects_to_login(srv, srv.get("/members/", headers=with_session(session)))

    # Logging in again with the changed password works.
    again = login(srv, address, THIRD_PASSWORD)
    assert again.status == 303 and where(again) == srv.url + "/members/", describe(srv, again)


def test_a_login_is_checkpointed_after_its_answer_under_every_server(srv):
    """`login` answers, ends its answer (lighttpd sends SIGTERM then) and only then closes the
    database, whose checkpoint must still run to the end: the WAL is left empty and the session
    is in the database file itself."""
    address = new_customer(srv)
    resp = login(srv, address, PASSWORD)
    assert resp.status == 303 and where(resp) == srv.url + "/members/", describe(srv, resp)
    wait_site_idle(srv.site)
    wal = srv.site.var / "latchkey.sqlite3-wal"
    # A FastCGI worker keeps its connection open: the commit stays in the WAL (durable, seen by
    # every reader) until SQLite's own checkpoint copies it, so there it is read through the WAL.
    uri = f"file:{srv.site.var / 'latchkey.sqlite3'}?mode=ro"
    if not getattr(srv, "FASTCGI", False):
        assert not wal.exists() or wal.stat().st_size == 0, f"WAL left with {wal.stat().st_size} bytes: the checkpoint was cut short"
        # Read the database file alone (immutable: no WAL, no locks), as a crash would leave it.
        uri = f"file:{srv.site.var / 'latchkey.sqlite3'}?immutable=1"
    with sqlite3.connect(uri, uri=True) as db:
        sessions = db.execute("SELECT count(*) FROM session JOIN person ON person.id = session.person_id "
                              "WHERE person.email = ?", (address,)).fetchone()[0]
    assert sessions == 1


def test_links_in_mail_come_from_base_url_not_the_host_header(srv):
    address = new_customer(srv)
    asked = srv.post("/cgi-bin/forgot", {"email": address, "locale": "en"},
                     headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert asked.status == 303, describe(srv, asked)
    assert where(asked) == srv.url + "/forgot-sent.html"
    msg = messages_to(srv, address, 1)[0]
    assert mail.reset_token(msg, srv.url)
    assert "evil.example" not in mail.text(msg) and "evil.example" not in mail.html(msg)


def test_french_forgot_form_answers_in_french_and_mails_in_french(srv):
    address = new_customer(srv)
    asked = srv.post("/cgi-bin/forgot", {"email": address, "locale": "fr"})
    assert asked.status == 303 and where(asked) == srv.url + "/fr/forgot-sent.html", describe(srv, asked)
    msg = messages_to(srv, address, 1)[0]
    assert msg["Content-Language"].strip() == "fr"
    assert str(msg["Subject"]) != "Reset your password"


# --- static pages and the server's own answers ------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/login.html", "/forgot.html", "/reset.html", "/account.html",
                                  "/fr/expired.html", "/es/forgot-sent.html", "/login.invalid-login.html",
                                  "/assets/latchkey.css"])
def test_static_pages_carry_the_security_headers(srv, path):
    resp = srv.get(path)
    assert resp.status == 200, describe(srv, resp)
    missing = [h for h in SECURITY_HEADERS if h not in resp.headers]
    assert not missing, f"{srv.kind} {path} lacks {missing}; has {sorted(resp.headers)}"
    assert resp.headers["referrer-policy"].strip() == "no-referrer"
    assert resp.headers["x-content-type-options"].strip() == "nosniff"
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp
    if path.endswith((".html", "/")):
        assert resp.headers.get("content-type", "").startswith("text/html"), resp.headers
    else:
        assert resp.headers.get("content-type", "").startswith("text/css"), resp.headers


def test_root_serves_the_login_page(srv):
    resp = srv.get("/")
    assert resp.status == 200 and 'name="password"' in resp.text, describe(srv, resp)


def test_well_known_change_password_redirects_to_the_account_settings_page(srv):
    resp = srv.get("/.well-known/change-password")
    assert resp.status == 303, describe(srv, resp)
    assert where(resp) in ("/cgi-bin/account", srv.url + "/cgi-bin/account"), where(resp)


def test_missing_page_answers_404(srv):
    resp = srv.get("/no-such-page.html")
    assert resp.status == 404, f"{srv.kind}: a missing page answered {resp.status}"
    assert resp.headers.get("content-type", "").startswith("text/html")


@pytest.mark.parametrize("path", ["/cgi-bin/forgot", "/cgi-bin/login", "/cgi-bin/logout"])
def test_get_on_a_post_endpoint_is_refused_with_405(srv, path):
    resp = srv.get(path)
    assert resp.status == 405, describe(srv, resp)
    assert "POST" in resp.headers.get("allow", ""), resp.headers
    assert "no-store" in resp.headers.get("cache-control", "")


@pytest.mark.parametrize("path", ["/var/secret.key", "/var/latchkey.sqlite3", "/latchkey.json",
                                  "/templates/pages/login.html", "/members/../var/secret.key",
                                  "/cgi-bin/../var/secret.key", "/cgi-bin/nope"])
def test_site_secrets_are_not_reachable(srv, path):
    resp = srv.get(path)
    key = (srv.site.var / "secret.key").read_bytes().strip()
    assert key not in resp.body and b"SQLite format" not in resp.body, f"{srv.kind} {path} leaked"
    assert b'"key_file"' not in resp.body and b"{{" not in resp.body, f"{srv.kind} {path} leaked site source"


def test_session_endpoint_without_a_cookie_is_401(srv):
    resp = srv.get("/cgi-bin/session")
    assert resp.status == 401, describe(srv, resp)


def test_every_forgot_request_sends_its_mail(srv):
    """The work after the answer (token + mail, in a detached worker) must survive the web
    server's handling of the finished CGI, for every request, not just some."""
    addresses = [new_customer(srv) for _ in range(8)]
    for address in addresses:
        asked = srv.post("/cgi-bin/forgot", {"email": address, "locale": "en"})
        assert asked.status == 303, describe(srv, asked)
    box = mail.Mailbox(srv.site.var / "mail")
    deadline = time.monotonic() + 10
    while True:
        got = {mail.recipient(m) for m in box.messages()}
        missing = [a for a in addresses if a not in got]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, (f"{srv.kind}: {len(missing)} of {len(addresses)} forgot requests sent no mail "
                         f"(no token issued either): {missing}")


# --- what a real browser sends ------------------------------------------------------------------
# Chromium's headers on a form POST from a page served with `Referrer-Policy: no-referrer` (as
# every Latchkey page is): the Origin is serialized as "null", Sec-Fetch-Site says same-origin.
BROWSER_POST = {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-User": "?1", "Sec-Fetch-Dest": "document"}


def raw_post(srv, path, form, headers, timeout=20.0):
    """(status, body, problem, seconds): a POST that survives a broken answer."""
    import http.client
    body = urllib.parse.urlencode(form).encode()
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    started = time.monotonic()
    problem = None
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
        resp = conn.getresponse()
        try:
            data = resp.read()
        except http.client.IncompleteRead as e:
            data, problem = e.partial, f"answer cut short after {len(e.partial)} body bytes"
        return resp.status, data, problem, time.monotonic() - started
    finally:
        conn.close()


def test_same_origin_browser_post_with_null_origin_is_accepted(srv):
    address = new_customer(srv)
    resp = srv.post("/cgi-bin/login", {"email": address, "password": PASSWORD, "locale": "en"},
                    headers=BROWSER_POST)
    assert resp.status == 303 and where(resp) == srv.url + "/members/", \
        f"a same-origin form POST as Chromium sends it was refused: {describe(srv, resp)}"
    asked = srv.post("/cgi-bin/forgot", {"email": address, "locale": "en"}, headers=BROWSER_POST)
    assert asked.status == 303 and where(asked) == srv.url + "/forgot-sent.html", describe(srv, asked)


def test_cross_site_post_with_null_origin_is_refused(srv):
    address = new_customer(srv)
    status, _, _, _ = raw_post(srv, "/cgi-bin/login", {"email": address, "password": PASSWORD, "locale": "en"},
                               {**BROWSER_POST, "Sec-Fetch-Site": "cross-site"})
    assert status == 403, f"{srv.kind}: {status}"


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"},
                                     {"Origin": "null", "Sec-Fetch-Site": "cross-site"}], ids=["origin", "fetch-site"])
def test_refused_post_gets_a_whole_answer_at_once(srv, headers):
    """A refused POST with a body: the 403 page must arrive complete and promptly (the CGI has to
    consume the request body, or Apache cuts the answer short after a stall)."""
    form = {"email": "someone@example.com", "password": "whatever it is", "locale": "en"}
    status, body, problem, seconds = raw_post(srv, "/cgi-bin/login", form, headers)
    assert status == 403
    assert problem is None, f"{srv.kind}: {problem} (after {seconds:.1f}s)"
    assert body.rstrip().endswith(b"</html>"), body[-200:]
    assert seconds < 2.0, f"{srv.kind}: the refusal took {seconds:.1f}s"
