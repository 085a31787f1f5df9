"""Login, sessions, logout, the account page and the members area, under a real Apache.

Each test starts its own site (so config tweaks such as throttle limits or session timeouts
stay local) and talks to the CGIs over HTTP on loopback. Redirects are never followed: the
tests read the 303 answers themselves.
"""
from __future__ import annotations

import email
import email.policy
import http.client
import re
import sqlite3
import time
import urllib.parse

import pytest

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
MEMBERS_TEXT = "Welcome to the members area"
EVIL_ORIGIN = "http://evil.example"


# --- helpers --------------------------------------------------------------------------------

def admin(site, *args, input=None):
    """Runs an admin command on `site`, asserts it worked, and gives var/ back to www-data."""
    result = site.latchkey(*args, input=input)
    assert result.returncode == 0, f"latchkey {' '.join(map(str, args))} failed: {result.stdout}{result.stderr}"
    site.chown_var()
    return result


def ensure_offer(site, slug="gold"):
    offers = site.__dict__.setdefault("_test_offers", set())
    if slug not in offers:
        admin(site, "offer", "add", slug, "--name", slug.title())
        offers.add(slug)


def add_customer(site, address, password=PASSWORD, offer="gold", temporary=False):
    """A customer with access to `offer` and a password (temporary when asked)."""
    ensure_offer(site, offer)
    admin(site, "user", "add", address, "--name", address.split("@")[0].title(), "--no-email", "--offer", offer)
    admin(site, "user", "set-password", address, *(["--temporary"] if temporary else []), input=password + "\n")


def cookies_set(resp) -> dict[str, str]:
    """name → the whole Set-Cookie header, for every cookie the response sets."""
    out = {}
    for header in resp.all("set-cookie"):
        out[header.split("=", 1)[0].strip()] = header
    return out


def cookie_value(resp, name="lk_session") -> str | None:
    header = cookies_set(resp).get(name)
    if header is None:
        return None
    return header.split(";", 1)[0].split("=", 1)[1]


def cookie_attrs(header: str) -> dict[str, str]:
    """Attributes of one Set-Cookie header, names lower-cased (flags map to '')."""
    attrs = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attrs[name.lower()] = value
    return attrs


def cookie_header(value, name="lk_session") -> dict:
    return {"Cookie": f"{name}={value}"}


def login(srv, address, password, cookie: dict | None = None, headers: dict | None = None, **fields):
    form = {"email": address, "password": password, "locale": "en", **fields}
    return srv.post("/cgi-bin/login", form, headers={**(cookie or {}), **(headers or {})})


def logged_in(srv, address, password=PASSWORD) -> str:
    """Logs in and returns the session cookie's value; fails the test when login fails."""
    resp = login(srv, address, password)
    value = cookie_value(resp)
    assert resp.status == 303 and value, (f"login of {address} failed: {resp.status} "
                                          f"{resp.headers.get('location')} {resp.all('set-cookie')}")
    return value


def session_status(srv, value, name="lk_session") -> int:
    return srv.get("/cgi-bin/session", headers=cookie_header(value, name)).status


def login_works(srv, address, password) -> bool:
    resp = login(srv, address, password)
    return resp.status == 303 and cookie_value(resp) is not None and \
        resp.headers.get("location") == srv.url + "/members/"


def account_change(srv, value, current, new, confirm=None, headers=None):
    form = {"current_password": current, "new_password": new,
            "confirm_password": new if confirm is None else confirm, "locale": "en"}
    return srv.post("/cgi-bin/account", form, headers={**cookie_header(value), **(headers or {})})


def audit_rows(site, action):
    db = sqlite3.connect(f"file:{site.var / 'latchkey.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT subject, detail FROM audit WHERE action = ? ORDER BY id", (action,)).fetchall()
    finally:
        db.close()


def wait_for_mail(site, to, subject_part, timeout=10.0):
    """The first message in SITE/var/mail/new to `to` whose subject contains `subject_part`:
    (subject, decoded text of every part). Polls until `timeout`."""
    folder = site.var / "mail" / "new"
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            seen.append((str(msg["To"]), str(msg["Subject"])))
            if to.lower() in str(msg["To"]).lower() and subject_part.lower() in str(msg["Subject"]).lower():
                texts = []
                for part in msg.walk():
                    if part.get_content_maintype() == "text":
                        texts.append(part.get_content())
                return str(msg["Subject"]), "\n".join(texts)
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} with subject containing {subject_part!r} within {timeout}s; "
                                 f"Maildir holds {seen[-20:]}")
        seen.clear()
        time.sleep(0.1)


# Apache picks the framing of an empty CGI body by a race (whether the CGI has exited when the
# headers go out): `Content-Length: 0` or `Transfer-Encoding: chunked`, for any outcome alike.
# The body itself is compared, so only those two framing headers and Date are left out.
NOT_COMPARED = {"date", "transfer-encoding", "content-length"}


def answered(what, call):
    """`call()`, failing the test clearly when the server cuts the answer off."""
    try:
        return call()
    except (http.client.HTTPException, ConnectionError) as exc:
        pytest.fail(f"{what}: the answer was cut off or the connection dropped ({exc!r})")


def comparable(resp):
    """Everything a client sees of a response except Date and the body's framing."""
    return resp.status, [(k.lower(), v) for k, v in resp.header_list if k.lower() not in NOT_COMPARED], resp.body


@pytest.fixture
def served(make_site, apache):
    """served(**latchkey_json_overrides) → (site, server)."""
    def start(**overrides):
        site = make_site(**overrides)
        return site, apache(site)
    return start


# --- 1. login, members area, logout -------------------------------------------------------------

def test_login_opens_members_area_and_logout_ends_the_session(served):
    site, srv = served()
    add_customer(site, "ann@example.com")

    resp = login(srv, "ann@example.com", PASSWORD)
    assert resp.status == 303, resp
    assert resp.headers["location"] == srv.url + "/members/"
    value = cookie_value(resp)
    assert value and len(value) == 43, resp.all("set-cookie")

    page = srv.get("/members/", headers=cookie_header(value))
    assert page.status == 200, (page.status, page.headers)
    assert MEMBERS_TEXT in page.text
    assert srv.get("/members/index.html", headers=cookie_header(value)).status == 200
    assert session_status(srv, value) == 204

    out = srv.post("/cgi-bin/logout", {"locale": "en"}, headers=cookie_header(value))
    assert out.status == 303
    assert out.headers["location"] == srv.url + "/login.signed-out.html"
    cleared = cookies_set(out).get("lk_session")
    assert cleared is not None, out.all("set-cookie")
    assert cleared.startswith("lk_session=;") and cookie_attrs(cleared).get("max-age") == "0", cleared

    # The cookie captured before logout is dead on the server, not just cleared in the browser.
    after = srv.get("/members/", headers=cookie_header(value))
    assert after.status == 303
    assert after.headers["location"].startswith(srv.url + "/login.session-expired.html"), after.headers
    assert MEMBERS_TEXT not in after.text
    assert session_status(srv, value) == 401


def test_members_area_without_session_redirects_to_login_and_remembers_the_page(served):
    site, srv = served()
    resp = srv.get("/members/")
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/login.session-expired.html?next=%2Fmembers%2F"
    next_cookie = cookies_set(resp).get("lk_next")
    assert next_cookie and next_cookie.startswith("lk_next=%2Fmembers%2F;"), resp.all("set-cookie")
    assert cookie_attrs(next_cookie).get("path") == "/cgi-bin/login"
    assert MEMBERS_TEXT not in resp.text
    assert srv.get("/cgi-bin/session").status == 401


def test_forged_or_malformed_session_cookie_is_refused(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    value = logged_in(srv, "ann@example.com")
    forged = ("A" if value[0] != "A" else "B") + value[1:]
    for bad in (forged, value[:-1], value + "A", "", "x" * 43, value.upper()):
        if bad == value:
            continue
        assert session_status(srv, bad) == 401, bad
        assert srv.get("/members/", headers=cookie_header(bad)).status == 303, bad
    assert session_status(srv, value) == 204


def test_revoking_the_last_access_ends_the_persons_sessions(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    value = logged_in(srv, "ann@example.com")
    assert session_status(srv, value) == 204
    admin(site, "access", "revoke", "ann@example.com", "gold")
    assert session_status(srv, value) == 401
    assert srv.get("/members/", headers=cookie_header(value)).status == 303


# --- 2. no enumeration through login failures -------------------------------------------------

@pytest.fixture
def failure_site(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    add_customer(site, "rev@example.com")
    admin(site, "access", "revoke", "rev@example.com", "gold")
    admin(site, "contact", "add", "con@example.com", "--name", "Con")
    return site, srv


FAILURES = [
    ("wrong password", "ann@example.com", "not the password at all"),
    ("unknown address", "nobody@example.com", PASSWORD),
    ("contact, not a customer", "con@example.com", PASSWORD),
]


def test_a_right_password_without_access_opens_the_account_page_and_a_wrong_one_fails_as_usual(failure_site):
    """Not a failure (SPEC §4): only the password's owner sees the difference."""
    site, srv = failure_site
    reference = login(srv, "ann@example.com", "not the password at all")
    wrong = login(srv, "rev@example.com", "not the password at all")
    assert wrong.all("set-cookie") == [] and comparable(wrong) == comparable(reference)
    right = login(srv, "rev@example.com", PASSWORD)
    assert right.headers["location"] == srv.url + "/account.no-access.html"
    value = cookie_value(right, "lk_session")
    assert value and session_status(srv, value) == 401
    assert srv.get("/members/", headers=cookie_header(value)).headers["location"] == srv.url + "/account.no-access.html"


def test_failed_logins_answer_identically_whatever_the_reason(failure_site):
    site, srv = failure_site
    answers = {reason: login(srv, address, password) for reason, address, password in FAILURES}
    reference = answers["wrong password"]
    assert reference.status == 303
    assert reference.headers["location"] == srv.url + "/login.invalid-login.html"
    for reason, resp in answers.items():
        assert resp.all("set-cookie") == [], (reason, resp.all("set-cookie"))
        assert comparable(resp) == comparable(reference), (reason, comparable(resp), comparable(reference))
    # And the right password still works, so the failures were not a broken login.
    assert login_works(srv, "ann@example.com", PASSWORD)


def test_failed_logins_audit_the_true_reason(failure_site):
    site, srv = failure_site
    for _reason, address, password in FAILURES:
        assert login(srv, address, password).headers.get("location") == srv.url + "/login.invalid-login.html"
    details = [detail for _subject, detail in audit_rows(site, "login.failed")]
    assert details == [reason for reason, _a, _p in FAILURES], details


def test_disabled_account_fails_like_a_wrong_password(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    add_customer(site, "dis@example.com")
    result = site.latchkey("user", "disable", "dis@example.com")
    if result.returncode != 0:
        pytest.skip(f"`latchkey user disable` not available yet: {result.stderr.strip()[:200]}")
    site.chown_var()
    reference = login(srv, "ann@example.com", "not the password at all")
    disabled = login(srv, "dis@example.com", PASSWORD)
    assert disabled.all("set-cookie") == []
    assert comparable(disabled) == comparable(reference)
    assert audit_rows(site, "login.failed")[-1][1] == "disabled"


# --- 3. throttling ------------------------------------------------------------------------------

def poll_until_login_works(srv, address, password, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if login_works(srv, address, password):
            return True
        time.sleep(0.25)
    return False


def test_login_throttle_locks_the_account_after_the_limit_and_unlocks_after_the_window(served):
    site, srv = served(throttle={"login_failures_per_account": {"count": 3, "window": "3s"},
                                 "login_failures_per_ip": {"count": 1000, "window": "15m"}})
    add_customer(site, "ann@example.com")
    started = time.monotonic()
    for _ in range(3):
        assert login(srv, "ann@example.com", "wrong password here").headers["location"].endswith("/login.invalid-login.html")
    locked = login(srv, "ann@example.com", PASSWORD)
    assert locked.status == 303
    assert locked.headers["location"] == srv.url + "/login.invalid-login.html", "right password accepted while throttled"
    assert locked.all("set-cookie") == []
    assert audit_rows(site, "login.failed")[-1][1] == "throttled"

    assert poll_until_login_works(srv, "ann@example.com", PASSWORD, timeout=10), "still locked 10 s after a 3 s window"
    assert time.monotonic() - started >= 2.0, "unlocked before the window could have passed"


def test_login_throttle_of_one_account_leaves_other_accounts_alone(served):
    site, srv = served(throttle={"login_failures_per_account": {"count": 3, "window": "1h"},
                                 "login_failures_per_ip": {"count": 1000, "window": "1h"}})
    add_customer(site, "ann@example.com")
    add_customer(site, "bob@example.com")
    for _ in range(5):
        login(srv, "ann@example.com", "wrong password here")
    assert not login_works(srv, "ann@example.com", PASSWORD)
    assert login_works(srv, "bob@example.com", PASSWORD)
    # The address is normalised: a different spelling of the locked address is locked too.
    assert not login_works(srv, "ANN@Example.com", PASSWORD)


def test_login_throttle_per_ip_locks_every_account_from_that_ip(served):
    site, srv = served(throttle={"login_failures_per_account": {"count": 1000, "window": "1h"},
                                 "login_failures_per_ip": {"count": 3, "window": "1h"}})
    add_customer(site, "ann@example.com")
    for n in range(3):
        login(srv, f"nobody{n}@example.com", PASSWORD)
    assert not login_works(srv, "ann@example.com", PASSWORD)


# --- 4. temporary password --------------------------------------------------------------------

def test_temporary_password_must_be_changed_before_the_members_area_opens(served):
    site, srv = served()
    add_customer(site, "tim@example.com", password="temporary-pass-1", temporary=True)

    resp = login(srv, "tim@example.com", "temporary-pass-1")
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/account.must-change.html"
    old = cookie_value(resp)
    assert old, resp.all("set-cookie")

    members = srv.get("/members/", headers=cookie_header(old))
    assert members.status == 303
    assert members.headers["location"] == srv.url + "/account.must-change.html"
    assert MEMBERS_TEXT not in members.text
    assert session_status(srv, old) == 401

    changed = account_change(srv, old, "temporary-pass-1", NEW_PASSWORD)
    assert changed.status == 303
    assert changed.headers["location"] == srv.url + "/account-done.html"
    new = cookie_value(changed)
    assert new and new != old, changed.all("set-cookie")

    assert session_status(srv, old) == 401
    assert srv.get("/members/", headers=cookie_header(old)).status == 303
    assert session_status(srv, new) == 204
    page = srv.get("/members/", headers=cookie_header(new))
    assert page.status == 200 and MEMBERS_TEXT in page.text

    assert login_works(srv, "tim@example.com", NEW_PASSWORD), "the new password does not log in"
    assert not login_works(srv, "tim@example.com", "temporary-pass-1"), "the temporary password still logs in"


# --- 5. account page and password reset end sessions ---------------------------------------------

def test_password_change_on_account_page_ends_other_sessions_and_sends_mail(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    here = logged_in(srv, "ann@example.com")
    elsewhere = logged_in(srv, "ann@example.com")
    link = admin(site, "user", "reset", "ann@example.com").stdout.splitlines()[1].strip()
    assert "/cgi-bin/reset?token=" in link, link

    changed = account_change(srv, here, PASSWORD, NEW_PASSWORD)
    assert changed.status == 303 and changed.headers["location"] == srv.url + "/account-done.html"
    fresh = cookie_value(changed)
    assert fresh and fresh not in (here, elsewhere)
    assert session_status(srv, here) == 401
    assert session_status(srv, elsewhere) == 401
    assert session_status(srv, fresh) == 204

    # The reset link handed out before the change is void now.
    visit = srv.get(urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl())
    assert visit.status == 303
    assert "/expired" in visit.headers["location"], visit.headers["location"]
    assert cookie_value(visit, "lk_reset") is None

    subject, _text = wait_for_mail(site, "ann@example.com", "password was changed")
    assert "Your password was changed" in subject


def test_password_reset_ends_every_session_of_that_person(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    add_customer(site, "bob@example.com")
    first = logged_in(srv, "ann@example.com")
    second = logged_in(srv, "ann@example.com")
    bystander = logged_in(srv, "bob@example.com")
    assert session_status(srv, first) == 204 and session_status(srv, second) == 204

    asked = srv.post("/cgi-bin/forgot", {"email": "ann@example.com", "locale": "en"})
    assert asked.status == 303, asked
    _subject, text = wait_for_mail(site, "ann@example.com", "")
    match = re.search(re.escape(srv.url) + r"(/cgi-bin/reset\?token=[A-Za-z0-9_\-]+)", text)
    assert match, f"no reset link for {srv.url} in the mail:\n{text}"

    visit = srv.get(match.group(1))
    assert visit.status == 303 and visit.headers["location"].startswith(srv.url + "/reset"), visit.headers
    token = cookie_value(visit, "lk_reset")
    assert token, visit.all("set-cookie")

    done = srv.post("/cgi-bin/reset", {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "locale": "en"},
                    headers=cookie_header(token, "lk_reset"))
    assert done.status == 303 and done.headers["location"] == srv.url + "/reset-done.html", done.headers
    assert cookie_value(done) is None, "a reset must not log the person in"

    assert session_status(srv, first) == 401
    assert session_status(srv, second) == 401
    assert srv.get("/members/", headers=cookie_header(first)).status == 303
    assert session_status(srv, bystander) == 204, "another person's session was ended too"
    assert login_works(srv, "ann@example.com", NEW_PASSWORD)
    assert not login_works(srv, "ann@example.com", PASSWORD)


# --- 7. where login sends the person --------------------------------------------------------------

OFF_SITE_NEXT = [
    "https://evil.example/",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "http://evil.example/members/",
    "evil.example/members/",
    "javascript:alert(1)",
    "https:/evil.example",
]

# Control characters in a field are bad input (SPEC §8): a 4xx page that changes nothing is
# as good as ignoring `next`; what must never happen is a redirect or a header built from it.
CONTROL_NEXT = ["/members/\r\nSet-Cookie: injected=1", "/\t/evil.example", "/\x00//evil.example"]


@pytest.fixture
def ann_site(served):
    site, srv = served()
    add_customer(site, "ann@example.com")
    return site, srv


@pytest.mark.parametrize("target", OFF_SITE_NEXT, ids=repr)
def test_login_ignores_next_pointing_off_site(ann_site, target):
    site, srv = ann_site
    resp = login(srv, "ann@example.com", PASSWORD, next=target)
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/members/", resp.headers["location"]
    assert cookie_value(resp)
    assert "injected" not in cookies_set(resp)


@pytest.mark.parametrize("target", CONTROL_NEXT, ids=repr)
def test_login_with_control_characters_in_next_never_redirects_off_site(ann_site, target):
    site, srv = ann_site
    resp = login(srv, "ann@example.com", PASSWORD, next=target)
    assert "injected" not in cookies_set(resp), resp.all("set-cookie")
    if resp.status == 303:
        assert resp.headers["location"] == srv.url + "/members/", resp.headers["location"]
    else:
        assert 400 <= resp.status < 500, resp.status
        assert cookie_value(resp) is None, "a refused login started a session"
        assert "location" not in resp.headers


def test_login_ignores_lk_next_cookie_pointing_off_site(ann_site):
    site, srv = ann_site
    forged = urllib.parse.quote("//evil.example/x", safe="")
    resp = login(srv, "ann@example.com", PASSWORD, cookie=cookie_header(forged, "lk_next"))
    assert resp.headers["location"] == srv.url + "/members/"


def test_login_honours_next_on_the_site(ann_site):
    site, srv = ann_site
    resp = login(srv, "ann@example.com", PASSWORD, next="/members/index.html")
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/members/index.html"
    assert cookie_value(resp)


def test_login_honours_the_page_the_members_gate_remembered(ann_site):
    site, srv = ann_site
    gate = srv.get("/members/index.html")
    assert gate.status == 303
    remembered = cookie_value(gate, "lk_next")
    assert remembered, gate.all("set-cookie")
    resp = login(srv, "ann@example.com", PASSWORD, cookie=cookie_header(remembered, "lk_next"))
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/members/index.html"
    page = srv.get(urllib.parse.urlsplit(resp.headers["location"]).path, headers=cookie_header(cookie_value(resp)))
    assert page.status == 200 and MEMBERS_TEXT in page.text


# --- 8. account page ------------------------------------------------------------------------------

def test_account_wrong_current_password_is_refused_and_password_unchanged(ann_site):
    site, srv = ann_site
    value = logged_in(srv, "ann@example.com")
    resp = account_change(srv, value, "not my password", NEW_PASSWORD)
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/account.wrong-current.html"
    assert cookie_value(resp) is None
    assert session_status(srv, value) == 204
    assert login_works(srv, "ann@example.com", PASSWORD)
    assert not login_works(srv, "ann@example.com", NEW_PASSWORD)


@pytest.mark.parametrize("new, confirm, page", [
    ("short", "short", "account.too-short.html"),
    (NEW_PASSWORD, NEW_PASSWORD + "x", "account.mismatch.html"),
    ("ann@example.com", "ann@example.com", "account.same-as-email.html"),
    ("ANN@example.com", "ANN@example.com", "account.same-as-email.html"),
])
def test_account_policy_failures_show_their_page_and_keep_the_password(ann_site, new, confirm, page):
    site, srv = ann_site
    value = logged_in(srv, "ann@example.com")
    resp = account_change(srv, value, PASSWORD, new, confirm)
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/" + page
    assert cookie_value(resp) is None
    assert session_status(srv, value) == 204
    assert login_works(srv, "ann@example.com", PASSWORD)
    assert not login_works(srv, "ann@example.com", new)


def test_account_without_session_goes_to_login_required(ann_site):
    site, srv = ann_site
    resp = srv.post("/cgi-bin/account", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                         "confirm_password": NEW_PASSWORD, "locale": "en"})
    assert resp.status == 303
    assert resp.headers["location"] == srv.url + "/account.login-required.html"
    assert login_works(srv, "ann@example.com", PASSWORD)


CROSS_SITE = [{"Origin": EVIL_ORIGIN}, {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site"},
              {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_cross_site_posts_are_refused_and_change_nothing(ann_site, headers):
    site, srv = ann_site
    value = logged_in(srv, "ann@example.com")
    problems = []

    def refused(what, call):
        try:
            resp = call()
        except (http.client.HTTPException, ConnectionError) as exc:
            problems.append(f"{what}: answer cut off ({exc!r}), status unseen")
            return
        if resp.status != 403:
            problems.append(f"{what}: {resp.status} {resp.headers.get('location', '')}, expected 403")
        if cookies_set(resp):
            problems.append(f"{what}: set cookies {resp.all('set-cookie')}")

    refused("login", lambda: login(srv, "ann@example.com", PASSWORD, headers=headers))
    refused("account", lambda: account_change(srv, value, PASSWORD, NEW_PASSWORD, headers=headers))
    refused("logout", lambda: srv.post("/cgi-bin/logout", {"locale": "en"}, headers={**cookie_header(value), **headers}))

    # Whatever the answers looked like, nothing may have changed.
    assert session_status(srv, value) == 204, "cross-site logout ended the session"
    assert login_works(srv, "ann@example.com", PASSWORD), "cross-site account POST changed the password"
    assert not problems, problems


@pytest.mark.parametrize("endpoint", ["login", "account", "logout"])
def test_refused_posts_get_a_complete_answer(ann_site, endpoint):
    """A POST refused before its body is read (cross-site) must still get its whole 403 page,
    every time: not a connection reset or a truncated body (SPEC §8: a clear 4xx page)."""
    site, srv = ann_site
    form = {"email": "ann@example.com", "password": PASSWORD, "current_password": PASSWORD,
            "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "locale": "en"}
    outcomes = []
    for _ in range(10):
        try:
            resp = srv.post(f"/cgi-bin/{endpoint}", form, headers={"Origin": EVIL_ORIGIN})
            outcomes.append(resp.status if resp.body else f"{resp.status} with an empty body")
        except (http.client.HTTPException, ConnectionError) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [403] * 10, f"10 cross-site POSTs to {endpoint} gave {outcomes}"


def test_same_origin_posts_are_accepted(ann_site):
    site, srv = ann_site
    resp = login(srv, "ann@example.com", PASSWORD, headers={"Origin": srv.url, "Sec-Fetch-Site": "same-origin"})
    assert resp.status == 303 and cookie_value(resp)


# --- 9. session timeouts --------------------------------------------------------------------------

def test_session_unused_past_the_idle_timeout_is_refused(served):
    site, srv = served(session={"idle_timeout": "2s"})
    add_customer(site, "ann@example.com")
    value = logged_in(srv, "ann@example.com")
    assert session_status(srv, value) == 204
    time.sleep(3.0)  # the behaviour under test is "unused for 3 s": nothing to poll meanwhile
    assert session_status(srv, value) == 401
    assert srv.get("/members/", headers=cookie_header(value)).status == 303


def test_session_in_use_outlives_the_idle_timeout(served):
    site, srv = served(session={"idle_timeout": "3s"})
    add_customer(site, "ann@example.com")
    value = logged_in(srv, "ann@example.com")
    end = time.monotonic() + 6.0
    while time.monotonic() < end:
        assert session_status(srv, value) == 204, "a session used every 0.5 s died of the 3 s idle timeout"
        time.sleep(0.5)


def test_session_past_the_absolute_timeout_is_refused_even_when_in_use(served):
    site, srv = served(session={"idle_timeout": "1h", "absolute_timeout": "3s"})
    add_customer(site, "ann@example.com")
    started = time.monotonic()
    value = logged_in(srv, "ann@example.com")
    deadline = started + 10
    while session_status(srv, value) == 204:
        assert time.monotonic() < deadline, "session still alive 10 s into a 3 s absolute timeout"
        time.sleep(0.25)
    assert time.monotonic() - started >= 2.0, "session ended before its absolute timeout"


# --- 10. the members area cannot be read around the gate --------------------------------------------

def test_members_folder_lies_outside_the_document_root(ann_site):
    site, srv = ann_site
    members = site.dir / "members"
    assert (members / "index.html").is_file()
    public = site.public.resolve()
    assert public not in members.resolve().parents and members.resolve() != public
    assert not any(MEMBERS_TEXT in p.read_text(errors="ignore") for p in public.rglob("*.html")), \
        "the members page was copied into the document root"


AROUND_THE_GATE = ["/../members/index.html", "/%2e%2e/members/index.html", "/..%2fmembers/index.html",
                   "/public/../members/index.html", "/site/members/index.html", "/./members/../members/index.html",
                   "/MEMBERS/index.html", "/members%2findex.html", "/cgi-bin/members/index.html",
                   "/cgi-bin/../members/index.html", "/members/index.html%00", "//members/index.html"]


@pytest.mark.parametrize("path", AROUND_THE_GATE)
def test_members_page_is_not_reachable_around_the_gate(ann_site, path):
    site, srv = ann_site
    resp = srv.get(path)
    assert MEMBERS_TEXT not in resp.text, f"{path} served the members page without a session ({resp.status})"
    assert resp.status in (303, 400, 403, 404), f"{path} answered {resp.status}"


@pytest.mark.parametrize("path", ["/members/../latchkey.json", "/members/%2e%2e/latchkey.json",
                                  "/members/..%2flatchkey.json", "/members/.hidden", "/members/%2ehidden",
                                  "/members/sub/../../latchkey.json", "/members/no-such-file.html",
                                  "/members/..%5clatchkey.json"])
def test_members_gate_serves_only_members_files_to_a_session(ann_site, path):
    site, srv = ann_site
    (site.dir / "members" / ".hidden").write_text("hidden-secret-9f2c\n")
    (site.dir / "members" / "sub").mkdir(exist_ok=True)
    value = logged_in(srv, "ann@example.com")
    resp = srv.get(path, headers=cookie_header(value))
    assert resp.status in (400, 403, 404), f"{path} answered {resp.status}"
    assert b"hidden-secret-9f2c" not in resp.body
    assert b'"base_url"' not in resp.body and b"SQLite format" not in resp.body
