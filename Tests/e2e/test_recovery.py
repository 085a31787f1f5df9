"""Password recovery end to end, against a real Apache: forgot → email → link → new password.

Each test starts its own site and Apache (`make_site`, `apache`), drives the CGIs over HTTP,
and checks what a customer and an attacker can observe (answers, mail in the Maildir) and what
the product must have done underneath (the SQLite database, read with the `sqlite3` CLI).

Timing: `forgot` queues its job in `var/queue/` and answers; a detached child forked from the
CGI (the "after-response worker", one at a time per site) then throttles, looks up, issues the
token and delivers the mail. The tests wait for it with `wait_idle(site)` (no CGI process of
this site is left running: both the CGI and its forked worker carry LATCHKEY_CONFIG in their
environment) or by polling the Maildir with a deadline, never with a fixed long sleep.

Needs argon2-cffi (to verify stored password hashes independently of the product).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import subprocess
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from lkserver import Response, deep_merge, poll, run_cgi, site_dump, site_sql, verifies, wait_site_idle

HERE = Path(__file__).resolve().parent


import maildir as mail  # noqa: E402  (Tests/e2e/maildir.py)

Mailbox = mail.Mailbox

CUSTOMER = "ann.customer@example.com"
CUSTOMER_NAME = "Ann Customer"
OTHER = "bob.other@example.com"
CONTACT = "carla.contact@example.com"
UNKNOWN = "nobody.here@example.com"
OLD_PASSWORD = "old-password-1"
NEW_PASSWORD = "brand new pass phrase 2"

EN_RESET_SUBJECT = "Reset your password"
EN_CHANGED_SUBJECT = "Your password was changed"
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
REPEAT = 5  # bad requests are sent this many times each: every answer must be whole


# --- the site and the server ------------------------------------------------------------------
def serve(make_site, apache, **overrides):
    """A fresh site (config overrides merged in) served by its own Apache. The per-IP forgot
    limit is raised so that only the limits a test sets can throttle it."""
    config = deep_merge({"throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"}}}, overrides)
    site = make_site(_build=False, **config)
    return apache(site)


def admin(site, *args, input=None, expect=0):
    """`latchkey ARGS` on this site as the admin; then var/ goes back to the web user."""
    result = site.latchkey(*args, input=input)
    site.chown_var()
    if expect is not None:
        assert result.returncode == expect, (f"latchkey {' '.join(map(str, args))} exited {result.returncode}, "
                                             f"expected {expect}\nstdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def add_customer(site, email=CUSTOMER, name=CUSTOMER_NAME, password=OLD_PASSWORD):
    result = admin(site, "user", "add", email, "--name", name, "--no-email")
    assert "Account successfully created." in result.stdout, result.stdout
    if password is not None:
        admin(site, "user", "set-password", email, input=password + "\n")


def add_contact(site, email=CONTACT):
    admin(site, "contact", "add", email)


def maildir(site) -> Mailbox:
    return Mailbox(site.var / "mail")


def link(server, token) -> str:
    return f"{server.url}/cgi-bin/reset?token={token}"


def page(server, name, locale=None) -> str:
    """Where a CGI sends the browser: `{base_url}[/locale]/NAME.html`."""
    return f"{server.url}{'/' + locale if locale else ''}/{name}.html"


def admin_reset_link(site) -> str:
    """`latchkey user reset CUSTOMER` → the token of the link it prints."""
    result = admin(site, "user", "reset", CUSTOMER)
    found = TOKEN_RE.findall(result.stdout.split("token=", 1)[-1]) if "token=" in result.stdout else []
    assert found, f"no link in `user reset` output: {result.stdout!r}"
    return found[0]


# --- HTTP ---------------------------------------------------------------------------------------
def forgot(server, email, locale="en", headers=None) -> Response:
    return server.post("/cgi-bin/forgot", {"email": email, "locale": locale}, headers=headers)


def follow_link(server, token) -> Response:
    return server.get(f"/cgi-bin/reset?token={token}")


def submit_reset(server, token, new_password, confirm=None, locale="en", headers=None) -> Response:
    hdrs = {"Cookie": f"lk_reset={token}", **(headers or {})}
    form = {"new_password": new_password, "confirm_password": new_password if confirm is None else confirm,
            "locale": locale}
    return server.post("/cgi-bin/reset", form, headers=hdrs)


def send(server, method, path, body=b"", headers=None, timeout=30.0):
    """One raw request that survives a broken answer: (Response or None, problem or None).

    `problem` says how the answer was broken (no answer at all, or a body cut short)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    problem = None
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        pairs = resp.getheaders()
        try:
            data = resp.read()
        except http.client.IncompleteRead as e:
            data = e.partial
            problem = f"the answer was cut short after {len(e.partial)} body bytes (connection broke mid-response)"
    except (http.client.RemoteDisconnected, ConnectionError) as e:
        return None, f"no answer at all: {e!r}"
    finally:
        conn.close()
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return Response(resp.status, merged, data, pairs), problem


def parse_cookie(header: str):
    """'name=value; A=b; Flag' → (name, value, {'a': 'b', 'flag': True})."""
    first, *attributes = [piece.strip() for piece in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for attribute in attributes:
        key, eq, val = attribute.partition("=")
        attrs[key.strip().lower()] = val.strip() if eq else True
    return name.strip(), value.strip(), attrs


def reset_cookies(resp: Response):
    return [parse_cookie(h) for h in resp.all("set-cookie") if h.strip().startswith("lk_reset=")]


# Apache decides the framing itself: it re-frames a CGI's answer as chunked unless the CGI has
# already exited when the headers go out, which is a matter of scheduling, not of the request.
# Those two headers are Apache's, so they are left out here; the CGI's own bytes are compared
# exactly in test_forgot_cgi_output_is_byte_identical_for_known_and_unknown.
APACHE_FRAMING = {"date", "transfer-encoding", "content-length"}


def without_date(resp: Response):
    return [(name.lower(), value) for name, value in resp.header_list if name.lower() not in APACHE_FRAMING]


# --- the database -------------------------------------------------------------------------------
def state(site):
    """What must not move on a refused request: the database content and the delivered mail."""
    return hashlib.sha256(site_dump(site)).hexdigest(), maildir(site).count()


def person(site, email) -> dict:
    rows = site_sql(site, f"SELECT id, email, locale, kind, password_hash FROM person WHERE email = '{email}'")
    assert len(rows) == 1, rows
    return rows[0]


# --- waiting for the after-response worker ----------------------------------------------------
def wait_idle(site, timeout=10.0, settle=0.0):
    """Waits until no CGI or after-response worker of `site` runs, then `settle` more seconds
    (covers a worker started just as the scan ran). Fails when they outlive the deadline."""
    deadline = time.monotonic() + timeout
    wait_site_idle(site, timeout)
    if settle:
        time.sleep(settle)
        wait_idle(site, timeout=max(0.1, deadline - time.monotonic()))


def sleep_until(epoch_seconds: float):
    delay = epoch_seconds - time.time()
    if delay > 0:
        time.sleep(delay)


def assert_security_headers(resp: Response, what: str):
    h = resp.headers
    problems = []
    if "no-store" not in h.get("cache-control", ""):
        problems.append(f"Cache-Control {h.get('cache-control')!r}")
    if h.get("referrer-policy", "").strip() != "no-referrer":
        problems.append(f"Referrer-Policy {h.get('referrer-policy')!r}")
    if h.get("x-content-type-options", "").strip() != "nosniff":
        problems.append(f"X-Content-Type-Options {h.get('x-content-type-options')!r}")
    if "frame-ancestors 'none'" not in h.get("content-security-policy", ""):
        problems.append(f"Content-Security-Policy {h.get('content-security-policy')!r}")
    assert not problems, f"{what} (status {resp.status}) lacks: {'; '.join(problems)}"


# =================================================================================================
# 1. The whole journey
# =================================================================================================
def test_customer_resets_password_through_emailed_link_end_to_end(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    add_customer(site, OTHER, "Bob Other", "bobs-password-9")
    before = person(site, CUSTOMER)
    assert verifies(before["password_hash"], OLD_PASSWORD), "set-password should have stored the old password"
    box = maildir(site)
    assert box.count() == 0

    # Ask for a link.
    answer = forgot(server, CUSTOMER)
    assert answer.status == 303, (answer.status, answer.text, server.error_log())
    assert answer.headers["location"] == page(server, "forgot-sent")

    # Exactly one well-formed message.
    msg = box.wait_for(1)[0]
    wait_idle(site)
    assert box.count() == 1, [str(m["Subject"]) for m in box.messages()]
    assert not box.leftovers(), f"half-delivered files in tmp/: {box.leftovers()}"
    for header in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "Content-Language",
                   "Auto-Submitted"):
        values = msg.get_all(header) or []
        assert len(values) == 1, f"{header}: expected once, got {values}"
    assert abs(parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 300, msg["Date"]
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msg["Message-ID"].strip()), msg["Message-ID"]
    assert msg["From"].addresses and msg["From"].addresses[0].addr_spec
    assert mail.recipient(msg) == CUSTOMER
    assert str(msg["Subject"]) == EN_RESET_SUBJECT
    assert msg["MIME-Version"].strip() == "1.0"
    assert msg["Content-Language"].strip() == "en"
    assert msg["Auto-Submitted"].strip().lower() == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    parts = mail.leaf_parts(msg)
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0]["Content-Transfer-Encoding"].strip().lower() == "8bit"
    assert parts[1]["Content-Transfer-Encoding"].strip().lower() == "base64"
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    token = mail.reset_token(msg, server.url)  # the same link in both parts
    assert len(base64.urlsafe_b64decode(token + "=")) == 32, "the token should carry 256 random bits"

    # Following the link: the token moves to a cookie, out of the URL. Visiting twice is fine.
    for visit in (1, 2):
        shown = follow_link(server, token)
        assert shown.status == 303, (visit, shown.status, shown.text)
        assert shown.headers["location"] == page(server, "reset"), shown.headers["location"]
        assert token not in shown.headers["location"]
        cookies = reset_cookies(shown)
        assert len(cookies) == 1, shown.all("set-cookie")
        name, value, attrs = cookies[0]
        assert value == token
        assert attrs == {"path": "/cgi-bin/reset", "max-age": "1800", "httponly": True, "samesite": "Strict"}, attrs

    # Sessions the person had before: all must end. Another person's stay.
    ids = {row["email"]: row["id"] for row in site_sql(site, "SELECT id, email FROM person")}
    now = int(time.time())
    for pid in (ids[CUSTOMER], ids[CUSTOMER], ids[OTHER]):
        site_sql(site, f"INSERT INTO session (person_id, id_hash, created_at, last_seen_at, expires_at) "
                  f"VALUES ({pid}, randomblob(32), {now}, {now}, {now + 3600})")

    # Setting the new password.
    done = submit_reset(server, token, NEW_PASSWORD)
    assert done.status == 303, (done.status, done.text, server.error_log())
    assert done.headers["location"] == page(server, "reset-done")
    cleared = reset_cookies(done)
    assert len(cleared) == 1 and cleared[0][1] == "" and cleared[0][2].get("max-age") == "0", done.all("set-cookie")
    assert cleared[0][2].get("path") == "/cgi-bin/reset"
    assert len(done.all("set-cookie")) == 1, f"a reset must not log the person in: {done.all('set-cookie')}"

    after = person(site, CUSTOMER)
    assert after["password_hash"].startswith("$argon2id$"), after["password_hash"][:20]
    assert after["password_hash"] != before["password_hash"]
    assert verifies(after["password_hash"], NEW_PASSWORD)
    assert not verifies(after["password_hash"], OLD_PASSWORD)
    tokens = site_sql(site, f"SELECT used_at FROM reset_token WHERE person_id = {ids[CUSTOMER]}")
    assert len(tokens) == 1 and tokens[0]["used_at"] is not None, tokens
    sessions = {row["person_id"]: row["n"] for row in
                site_sql(site, "SELECT person_id, count(*) AS n FROM session GROUP BY person_id")}
    assert sessions.get(ids[CUSTOMER], 0) == 0, f"the customer's sessions survived the reset: {sessions}"
    assert sessions.get(ids[OTHER], 0) == 1, f"another person's session was touched: {sessions}"

    # The "password changed" notice.
    changed = box.wait_for(2)[1]
    assert str(changed["Subject"]) == EN_CHANGED_SUBJECT
    assert mail.recipient(changed) == CUSTOMER
    assert changed["Auto-Submitted"].strip().lower() == "auto-generated"
    assert token.encode() not in box.raw()[1]

    # The link is spent: visiting it or posting with it again leads to expired.html.
    assert follow_link(server, token).headers["location"] == page(server, "expired")
    again = submit_reset(server, token, "yet another password 3")
    assert again.status == 303 and again.headers["location"] == page(server, "expired")
    assert person(site, CUSTOMER)["password_hash"] == after["password_hash"]


# =================================================================================================
# 2. Language
# =================================================================================================
def test_french_form_sends_french_email_to_person_without_locale(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    assert person(site, CUSTOMER)["locale"] == ""
    fr = json.loads((site.dir / "locales" / "fr.json").read_text(encoding="utf-8"))
    fr_subject = fr["email"]["reset"]["subject"]

    answer = forgot(server, CUSTOMER, locale="fr")
    assert answer.status == 303
    assert answer.headers["location"] == page(server, "forgot-sent", "fr")

    msg = maildir(site).wait_for(1)[0]
    raw = maildir(site).raw()[0]
    assert msg["Content-Language"].strip() == "fr"
    assert str(msg["Subject"]) == fr_subject
    assert str(msg["Subject"]) != EN_RESET_SUBJECT
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    subject_line = re.search(rb"^Subject:.*(?:\r?\n[ \t].*)*", head, re.M | re.I).group(0)
    assert subject_line.isascii() and b"=?utf-8?" in subject_line.lower(), \
        f"a non-ASCII subject must be RFC 2047-encoded: {subject_line!r}"
    assert fr["email"]["reset"]["intro"] in mail.text(msg)
    assert 'lang="fr"' in mail.html(msg)
    mail.reset_token(msg, server.url)


# =================================================================================================
# 3. No account enumeration
# =================================================================================================
def enumeration_scenario(make_site, apache):
    """Customer asks twice (allowed), a third time (throttled: limit 2 per address), then an
    unknown address and a contact ask. Returns the server, the answers and the request end."""
    server = serve(make_site, apache, throttle={"forgot_per_address": {"count": 2, "window": "1h"}})
    site = server.site
    add_customer(site)
    add_contact(site)
    box = maildir(site)
    answers = {"customer": forgot(server, CUSTOMER)}
    box.wait_for(1)
    answers["customer again"] = forgot(server, CUSTOMER)
    box.wait_for(2)
    answers["throttled customer"] = forgot(server, CUSTOMER)
    answers["unknown"] = forgot(server, UNKNOWN)
    answers["contact"] = forgot(server, CONTACT)
    last_request = time.time()
    return server, answers, last_request


def test_forgot_cgi_output_is_byte_identical_for_known_and_unknown(make_site):
    site = make_site(throttle={"forgot_per_address": {"count": 1000, "window": "1h"}, "forgot_per_ip": {"count": 1000, "window": "1h"}})
    site.latchkey("user", "add", "known@example.com", "--no-email")
    site.latchkey("contact", "add", "contact@example.com")
    site.chown_var()
    outputs = {email: run_cgi(site, "forgot", body="email=" + urllib.parse.quote(email), remote_addr="127.0.0.1").raw
               for email in ["known@example.com", "nobody@example.com", "contact@example.com"]}
    assert outputs["known@example.com"].startswith(b"Status: 303 See Other\r\n")
    assert len(set(outputs.values())) == 1, outputs


def test_forgot_answer_is_byte_identical_for_customer_unknown_contact_and_throttled(make_site, apache):
    server, answers, _ = enumeration_scenario(make_site, apache)
    reference = answers["customer"]
    assert reference.status == 303 and reference.headers["location"] == page(server, "forgot-sent")
    for name, answer in answers.items():
        assert answer.status == reference.status, (name, answer.status)
        assert without_date(answer) == without_date(reference), f"{name}: headers differ"
        assert answer.body == reference.body, f"{name}: body differs"


def test_forgot_sends_mail_only_to_unthrottled_customer(make_site, apache):
    server, _, last_request = enumeration_scenario(make_site, apache)
    site = server.site
    wait_idle(site)
    sleep_until(last_request + 2.0)  # the brief's margin on top of the worker check
    wait_idle(site)
    messages = maildir(site).messages()
    assert [mail.recipient(m) for m in messages] == [CUSTOMER, CUSTOMER], \
        [(str(m["To"]), str(m["Subject"])) for m in messages]


def test_audit_records_true_reason_for_each_refused_forgot_request(make_site, apache):
    server, _, _ = enumeration_scenario(make_site, apache)
    site = server.site
    rows = poll(lambda: site_sql(site, "SELECT person_id, subject, detail FROM audit WHERE action = 'reset.refused' "
                                  "ORDER BY id"),
                lambda r: len(r) >= 3, what="three reset.refused audit rows")
    wait_idle(site)
    rows = site_sql(site, "SELECT person_id, subject, detail FROM audit WHERE action = 'reset.refused' ORDER BY id")
    assert len(rows) == 3, rows
    customer_id, contact_id = person(site, CUSTOMER)["id"], person(site, CONTACT)["id"]
    # The three workers may finish in any order: match each row by its person.
    by_person = {row["person_id"]: row for row in rows}
    assert len(by_person) == 3, rows
    assert "throttled" in by_person.get(customer_id, {}).get("detail", ""), rows
    assert "unknown address" in by_person.get(None, {}).get("detail", ""), rows
    assert "contact" in by_person.get(contact_id, {}).get("detail", ""), rows


# =================================================================================================
# 4. Reuse window
# =================================================================================================
def test_forgot_within_reuse_window_resends_same_link_and_after_it_issues_new_one(make_site, apache):
    server = serve(make_site, apache, reset={"link_lifetime": "30s", "reuse_window": "3s"})
    site = server.site
    add_customer(site)
    box = maildir(site)

    forgot(server, CUSTOMER)
    first = mail.reset_token(box.wait_for(1)[0], server.url)
    reuse_until = site_sql(site, "SELECT reuse_until FROM reset_token ORDER BY id DESC LIMIT 1")[0]["reuse_until"]
    forgot(server, CUSTOMER)
    second = mail.reset_token(box.wait_for(2)[1], server.url)
    assert time.time() < reuse_until, "setup too slow: the second request fell outside the 3 s window"
    assert second == first, "a request within the reuse window must re-send the same link"

    sleep_until(reuse_until + 1.0)
    forgot(server, CUSTOMER)
    third = mail.reset_token(box.wait_for(3)[2], server.url)
    assert third != first, "a request after the reuse window must issue a new link"
    assert follow_link(server, first).headers["location"] == page(server, "expired"), \
        "the older link must stop working once a new one is issued"
    assert follow_link(server, third).headers["location"] == page(server, "reset")


def test_admin_user_reset_within_reuse_window_prints_link_sent_by_mail(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    forgot(server, CUSTOMER)
    emailed = mail.reset_token(maildir(site).wait_for(1)[0], server.url)
    wait_idle(site)

    result = admin(site, "user", "reset", CUSTOMER)
    lines = result.stdout.splitlines()
    assert lines[0] == "Reset password email sent.", result.stdout
    assert lines[1].strip() == link(server, emailed), result.stdout
    assert lines[2].startswith("Expires"), result.stdout
    resent = maildir(site).wait_for(2)[1]
    assert mail.reset_token(resent, server.url) == emailed


def test_admin_user_reset_refuses_a_contact(make_site):
    site = make_site(_build=False)
    add_contact(site)
    result = admin(site, "user", "reset", CONTACT, expect=1)
    assert f"error: {CONTACT} is a contact, not a customer: grant access first" in result.stderr, result.stderr
    assert maildir(site).count() == 0


# =================================================================================================
# 5. Links that no longer (or never did) work
# =================================================================================================
def test_used_link_lands_on_expired_page_and_changes_nothing(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    token = admin_reset_link(site)
    assert submit_reset(server, token, NEW_PASSWORD).headers["location"] == page(server, "reset-done")
    maildir(site).wait_for(2)  # the reset email and the "password changed" notice
    wait_idle(site)

    before = state(site)
    for _ in range(2):
        answer = follow_link(server, token)
        assert answer.status == 303 and answer.headers["location"] == page(server, "expired")
        assert not reset_cookies(answer) or all(c[1] == "" for c in reset_cookies(answer))
    wait_idle(site, settle=0.3)
    assert state(site) == before


def test_expired_link_lands_on_expired_page_and_changes_nothing(make_site, apache):
    server = serve(make_site, apache, reset={"link_lifetime": "2s", "reuse_window": "1s"})
    site = server.site
    add_customer(site)
    token = admin_reset_link(site)
    assert follow_link(server, token).headers["location"] == page(server, "reset"), "fresh link should work"
    expires_at = site_sql(site, "SELECT expires_at FROM reset_token")[0]["expires_at"]
    sleep_until(expires_at + 1.0)

    before = state(site)
    answer = follow_link(server, token)
    assert answer.status == 303 and answer.headers["location"] == page(server, "expired")
    assert not [c for c in reset_cookies(answer) if c[1]], answer.all("set-cookie")
    wait_idle(site, settle=0.3)
    assert state(site) == before


BAD_TOKENS = {
    "garbage": lambda t: "not-a-token",
    "one character short": lambda t: t[:-1],
    "one character long": lambda t: t + "A",
    "one character changed": lambda t: t[:-1] + ("B" if t[-1] != "B" else "C"),
    "unknown but well formed": lambda t: secrets.token_urlsafe(32),
    "wrong alphabet": lambda t: t[:-1] + "~",
    "empty": lambda t: "",
    "double length": lambda t: t + t,
}


@pytest.mark.parametrize("kind", [*BAD_TOKENS, "missing"])
def test_malformed_or_unknown_token_lands_on_expired_page_and_changes_nothing(make_site, apache, kind):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    real = admin_reset_link(site)  # a live token, so near-misses of it are tested too
    path = "/cgi-bin/reset" if kind == "missing" else \
        "/cgi-bin/reset?token=" + urllib.parse.quote(BAD_TOKENS[kind](real), safe="")
    wait_idle(site)

    before = state(site)
    answer = server.get(path)
    assert answer.status == 303, (answer.status, answer.text[:200])
    assert answer.headers["location"] == page(server, "expired")
    assert not [c for c in reset_cookies(answer) if c[1]], answer.all("set-cookie")
    wait_idle(site, settle=0.3)
    assert state(site) == before
    assert follow_link(server, real).headers["location"] == page(server, "reset")


# =================================================================================================
# 6. Refused requests change nothing
# =================================================================================================
def _bad_request(server, endpoint, kind, token):
    """(method, path, body, headers) of a request that must be refused; the form inside would
    do real work if it got through (mail the customer / set a new password)."""
    if endpoint == "forgot":
        form = {"email": CUSTOMER, "locale": "en"}
        headers = {}
    else:
        form = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "locale": "en"}
        headers = {"Cookie": f"lk_reset={token}"}
    body = urllib.parse.urlencode(form).encode()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    path = f"/cgi-bin/{endpoint}"
    if kind == "cross-site Origin":
        headers["Origin"] = "http://evil.example"
    elif kind == "cross-site Sec-Fetch-Site":
        headers["Sec-Fetch-Site"] = "cross-site"
    elif kind == "oversized body":
        body += b"&padding=" + b"x" * 9000
    elif kind == "text/plain body":
        headers["Content-Type"] = "text/plain"
    elif kind == "GET":
        return "GET", path + "?" + body.decode(), b"", {k: v for k, v in headers.items() if k != "Content-Type"}
    return "POST", path, body, headers


BAD_REQUESTS = [
    ("forgot", "cross-site Origin", 403),
    ("forgot", "cross-site Sec-Fetch-Site", 403),
    ("forgot", "oversized body", 413),
    ("forgot", "text/plain body", 415),
    ("forgot", "GET", 405),
    ("reset", "cross-site Origin", 403),
    ("reset", "cross-site Sec-Fetch-Site", 403),
    ("reset", "oversized body", 413),
    ("reset", "text/plain body", 415),
]


@pytest.mark.parametrize("endpoint,kind,status", BAD_REQUESTS,
                         ids=[f"{e}-{k.replace(' ', '_')}-{s}" for e, k, s in BAD_REQUESTS])
def test_bad_request_gets_error_page_and_changes_nothing(make_site, apache, endpoint, kind, status):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    token = admin_reset_link(site)
    wait_idle(site)
    before = state(site)

    method, path, body, headers = _bad_request(server, endpoint, kind, token)
    failures = []
    for attempt in range(1, REPEAT + 1):
        answer, problem = send(server, method, path, body, headers)
        if problem:
            failures.append(f"attempt {attempt}: {problem}")
            continue
        if answer.status != status:
            failures.append(f"attempt {attempt}: status {answer.status}, expected {status}")
            continue
        if str(status).encode() not in answer.body or b"Acme Academy" not in answer.body:
            failures.append(f"attempt {attempt}: not the branded {status} page: {answer.body[:120]!r}")
        if not answer.headers.get("content-type", "").startswith("text/html"):
            failures.append(f"attempt {attempt}: Content-Type {answer.headers.get('content-type')!r}")
        if status == 405 and "POST" not in answer.headers.get("allow", ""):
            failures.append(f"attempt {attempt}: 405 without Allow: POST ({answer.headers.get('allow')!r})")

    wait_idle(site, settle=0.5)
    if state(site) != before:
        failures.append("the refused requests changed the database or sent mail")
    if follow_link(server, token).headers["location"] != page(server, "reset"):
        failures.append("the refused requests spent the reset link")
    assert not failures, (f"{method} {path} ({kind}) should get a whole {status} page every time and change "
                          f"nothing:\n  " + "\n  ".join(failures) + "\nerror.log tail:\n" + server.error_log()[-1500:])


def test_same_origin_browser_post_is_accepted(make_site, apache):
    """The control for the cross-site refusals: a browser's same-origin POST goes through."""
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    answer = forgot(server, CUSTOMER, headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert answer.status == 303 and answer.headers["location"] == page(server, "forgot-sent")
    assert mail.recipient(maildir(site).wait_for(1)[0]) == CUSTOMER


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_implausible_email_goes_to_invalid_email_page_and_changes_nothing(make_site, apache, locale):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    before = state(site)
    for address in ("not-an-email", "ann.customer@", "@example.com", ""):
        answer = forgot(server, address, locale=locale)
        assert answer.status == 303, (address, answer.status)
        assert answer.headers["location"] == page(server, "forgot.invalid-email", None if locale == "en" else locale), \
            (address, answer.headers["location"])
    wait_idle(site, settle=0.5)
    assert state(site) == before


POLICY_FAILURES = {
    "too-short": ("seven77", None),
    "too-long": ("x" * 129, None),
    "mismatch": ("correct horse battery 1", "correct horse battery 2"),
    "same-as-email": (CUSTOMER, None),
}


@pytest.mark.parametrize("variant", list(POLICY_FAILURES))
def test_reset_policy_failure_shows_its_page_keeps_link_and_changes_nothing(make_site, apache, variant):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    token = admin_reset_link(site)
    wait_idle(site)
    before = state(site)

    password, confirm = POLICY_FAILURES[variant]
    answer = submit_reset(server, token, password, confirm)
    assert answer.status == 303, (answer.status, answer.text[:200])
    assert answer.headers["location"] == page(server, f"reset.{variant}")
    assert not reset_cookies(answer), f"the link's cookie must be kept: {answer.all('set-cookie')}"
    wait_idle(site, settle=0.3)
    assert state(site) == before
    assert verifies(person(site, CUSTOMER)["password_hash"], OLD_PASSWORD)
    assert follow_link(server, token).headers["location"] == page(server, "reset")


# =================================================================================================
# 7. Mail that cannot go out is kept and retried
# =================================================================================================
FAILING_SENDMAIL = """#!/bin/sh
cat >/dev/null
echo "simulated outage" >&2
exit 75
"""

WORKING_SENDMAIL = """#!/bin/sh
# A sendmail stand-in: takes the message on stdin (recipients from its headers: -t) and files it.
printf '%s\\n' "$*" >> "{log}"
name="{outbox}/$(date +%s%N).$$"
cat > "{outbox}/.$$.tmp" && mv "{outbox}/.$$.tmp" "$name.eml"
"""


def sendmail_setup(site):
    """Writes both stand-ins into the site folder; returns (failing, working, outbox, args log)."""
    tools = site.dir / "bin"
    tools.mkdir(mode=0o755, exist_ok=True)
    tools.chmod(0o755)
    outbox = site.top / "outbox"
    outbox.mkdir(mode=0o777)
    outbox.chmod(0o777)  # the web worker (www-data) and the admin (root) both deliver
    log = site.top / "sendmail-args.log"
    log.touch()
    log.chmod(0o666)
    failing, working = tools / "failing-sendmail", tools / "sendmail"
    failing.write_text(FAILING_SENDMAIL)
    working.write_text(WORKING_SENDMAIL.format(outbox=outbox, log=log))
    for script in (failing, working):
        script.chmod(0o755)
    return failing, working, outbox, log


def mail_log(site) -> list[dict]:
    result = admin(site, "mail", "log", "--json")
    return json.loads(result.stdout)


def fail_one_forgot(server, failing):
    """Forgot with the failing transport: the answer is unchanged, the message ends up failed."""
    site = server.site
    site.update_config(mail={"transport": f"sendmail:{failing}"})
    answer = forgot(server, CUSTOMER)
    assert answer.status == 303 and answer.headers["location"] == page(server, "forgot-sent")
    poll(lambda: site_sql(site, "SELECT status FROM mail"), lambda rows: rows and rows[-1]["status"] == "failed",
         what="the message to be marked failed")
    wait_idle(site)
    return answer


def test_failed_sendmail_is_recorded_then_delivered_by_mail_deliver_after_retry_after(make_site, apache):
    server = serve(make_site, apache, mail={"retry_after": "1s"})
    site = server.site
    add_customer(site)
    failing, working, outbox, args_log = sendmail_setup(site)

    fail_one_forgot(server, failing)
    log = mail_log(site)
    assert len(log) == 1, log
    entry = log[0]
    assert entry["status"] == "failed" and entry["recipient"] == CUSTOMER, entry
    assert re.search(r"\b75\b", entry["last_error"]), f"the error should mention status 75: {entry['last_error']!r}"
    assert entry["attempts"] == 1 and entry["sent_at"] is None, entry
    assert Mailbox(outbox).count() == 0 and maildir(site).count() == 0

    site.update_config(mail={"transport": f"sendmail:{working}"})
    due = site_sql(site, f"SELECT next_attempt_at FROM mail WHERE id = {entry['id']}")[0]["next_attempt_at"]
    sleep_until(due + 1.0)
    result = admin(site, "mail", "deliver")
    assert re.search(r"\b1 sent\b", result.stdout) and re.search(r"\b0 failed\b", result.stdout), result.stdout

    delivered = Mailbox(outbox).messages()
    assert len(delivered) == 1
    assert mail.recipient(delivered[0]) == CUSTOMER and str(delivered[0]["Subject"]) == EN_RESET_SUBJECT
    assert args_log.read_text().split() == ["-t", "-i"], args_log.read_text()
    token = mail.reset_token(delivered[0], server.url)
    assert follow_link(server, token).headers["location"] == page(server, "reset")
    entry = mail_log(site)[0]
    assert entry["status"] == "sent" and entry["sent_at"] is not None, entry

    again = admin(site, "mail", "deliver")
    assert re.search(r"\b0 sent\b", again.stdout), again.stdout
    assert Mailbox(outbox).count() == 1, "a sent message was delivered twice"


def test_mail_retry_delivers_failed_message_at_once(make_site, apache):
    server = serve(make_site, apache, mail={"retry_after": "1h"})
    site = server.site
    add_customer(site)
    failing, working, outbox, _ = sendmail_setup(site)
    fail_one_forgot(server, failing)
    entry = mail_log(site)[0]
    assert entry["status"] == "failed", entry

    site.update_config(mail={"transport": f"sendmail:{working}"})
    waiting = admin(site, "mail", "deliver")
    assert re.search(r"\b0 sent\b", waiting.stdout) and re.search(r"\b1 waiting\b", waiting.stdout), \
        f"not due for an hour yet: {waiting.stdout}"
    assert Mailbox(outbox).count() == 0

    admin(site, "mail", "retry", entry["id"])
    delivered = Mailbox(outbox).messages()  # at once: no waiting
    assert len(delivered) == 1 and mail.recipient(delivered[0]) == CUSTOMER
    assert mail_log(site)[0]["status"] == "sent"


# =================================================================================================
# 8. The database alone does not give the links away
# =================================================================================================
def test_database_never_holds_link_token_in_plain_text(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    forgot(server, CUSTOMER)
    tokens = {"forgot": mail.reset_token(maildir(site).wait_for(1)[0], server.url)}
    welcome = admin(site, "user", "add", OTHER, "--name", "Bob Other")
    tokens["welcome"] = TOKEN_RE.findall(welcome.stdout.split("token=", 1)[-1])[0]
    admin(site, "user", "add", "dora@example.com", "--no-email")
    admin(site, "user", "set-password", "dora@example.com", input="doras-password-4\n")
    tokens["admin reset"] = TOKEN_RE.findall(admin(site, "user", "reset", "dora@example.com").stdout
                                             .split("token=", 1)[-1])[0]
    maildir(site).wait_for(3)
    wait_idle(site)

    text = site_dump(site)
    files = b"".join(p.read_bytes() for p in site.var.glob("latchkey.sqlite3*"))
    for what, token in tokens.items():
        raw = base64.urlsafe_b64decode(token + "=")
        for needle in (token.encode(), raw.hex().encode(), raw.hex().upper().encode()):
            assert needle not in text, f"the {what} token is in the database dump as {needle[:12]!r}…"
        for needle in (token.encode(), raw):
            assert needle not in files, f"the {what} token is in the database files"


# =================================================================================================
# 9. Headers on every CGI answer
# =================================================================================================
def test_every_cgi_answer_carries_security_headers(make_site, apache):
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    token = admin_reset_link(site)
    answers = {
        "forgot 303": forgot(server, CUSTOMER),
        "forgot invalid email 303": forgot(server, "nope"),
        "reset GET valid 303": follow_link(server, token),
        "reset GET unknown 303": follow_link(server, "x" * 43),
        "reset POST too short 303": submit_reset(server, token, "short"),
        "reset POST done 303": submit_reset(server, token, NEW_PASSWORD),
        "reset POST used 303": submit_reset(server, token, NEW_PASSWORD),
    }
    for endpoint, kind, status in BAD_REQUESTS:
        for _ in range(REPEAT):  # an answer cut short still has its headers; one with none is retried
            answer, _problem = send(server, *_bad_request(server, endpoint, kind, token))
            if answer is not None:
                answers[f"{endpoint} {kind} {status}"] = answer
                break
        else:
            pytest.fail(f"{endpoint} {kind}: no answer in {REPEAT} tries")
    missing = []
    for what, answer in answers.items():
        expected_status = int(what.rsplit(" ", 1)[1])
        assert answer.status == expected_status, (what, answer.status)
        try:
            assert_security_headers(answer, what)
        except AssertionError as e:
            missing.append(str(e))
    assert not missing, "\n".join(missing)


# --- the after-response queue -------------------------------------------------------------------
def test_a_flood_of_forgot_requests_queues_every_one_and_mails_every_customer(make_site, apache):
    """120 forgot requests from 12 clients at once, for 40 customers and 80 unknown addresses:
    every answer is the same page, one worker at a time works the queue, and afterwards every
    customer has exactly their mails, the queue is empty and the worker logged no error."""
    server = serve(make_site, apache, throttle={"forgot_per_address": {"count": 100, "window": "1h"}})
    site = server.site
    customers = [f"flood{i}@example.com" for i in range(40)]
    for address in customers:
        admin(site, "user", "add", address, "--no-email")
    addresses = [customers[i // 3] if i % 3 == 0 else f"nobody{i}@example.com" for i in range(120)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda a: forgot(server, a), addresses))
    assert {(r.status, r.headers.get("location")) for r in answers} == {(303, page(server, "forgot-sent"))}
    maildir(site).wait_for(40, timeout=30)
    wait_idle(site, timeout=30)
    mails = maildir(site).messages()
    assert sorted(m["To"] for m in mails) == sorted(customers)
    assert [p.name for p in (site.var / "queue").iterdir() if not p.name.startswith(".")] == []
    log = site.var / "latchkey-worker.log"
    assert not log.exists() or log.read_text() == ""
    refused = site_sql(site, "SELECT count(*) AS n FROM audit WHERE action = 'reset.refused'")[0]["n"]
    assert refused == 80


def test_jobs_worked_in_batches_each_keep_their_own_outcome(make_site, apache):
    """70 stranded jobs (more than one batch of 32): customers, unknown addresses and one file
    that is not a job. `mail deliver` works them a batch per transaction, yet the bad file is
    dropped alone, every customer gets one mail recorded as sent after one attempt, and every
    unknown address is refused in the audit."""
    server = serve(make_site, apache)
    site = server.site
    customers = [f"batch{i}@example.com" for i in range(20)]
    for address in customers:
        admin(site, "user", "add", address, "--no-email")
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    for i in range(70):
        address = customers[i // 3] if i % 3 == 0 and i // 3 < 20 else f"nobody{i}@example.com"
        (queue / f"{1000 + i:010d}-1-batch").write_text(f"forgot\t{address}\ten\t192.0.2.{i}\n")
    (queue / "0000001035-1-garbage").write_text("rm -rf /\n")
    result = admin(site, "mail", "deliver")
    assert "71 queued web requests worked, 1 failed" in result.stdout
    assert "not a readable queued job" in result.stderr
    assert sorted(m["To"].addresses[0].addr_spec for m in maildir(site).messages()) == sorted(customers)
    history = site_sql(site, "SELECT recipient, status, attempts FROM mail")
    assert sorted((r["recipient"], r["status"], r["attempts"]) for r in history) == sorted((c, "sent", 1) for c in customers)
    refused = site_sql(site, "SELECT count(*) AS n FROM audit WHERE action = 'reset.refused' AND detail = 'unknown address'")
    assert refused[0]["n"] == 50
    assert list(queue.iterdir()) == [queue / ".lock"]


def test_a_job_file_that_cannot_be_removed_stops_the_worker_instead_of_repeating_it(make_site, apache):
    """A worked job whose file cannot be removed (made immutable here) would be found again at
    once: the worker works it once, says why it stopped, and leaves it for a person to see."""
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    job = queue / "0000000001-1-stuck"
    job.write_text(f"forgot\t{CUSTOMER}\ten\t192.0.2.7\n")
    if subprocess.run(["chattr", "+i", str(job)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file immutable")
    try:
        result = site.latchkey("mail", "deliver")
    finally:
        subprocess.run(["chattr", "-i", str(job)], check=True)
        site.chown_var()
    assert "cannot remove this worked job" in result.stderr and job.name in result.stderr
    assert [m["To"].addresses[0].addr_spec for m in maildir(site).messages()] == [CUSTOMER]
    assert job.exists()


def test_the_worker_waits_a_moment_for_more_jobs_before_it_exits(make_site, apache):
    """Under load one worker works what many requests queue: after the queue empties it waits
    a moment (0.1 s) for more. A job placed 5 ms after the first mail arrived, with no request
    to start a worker, is worked by the one still waiting."""
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    admin(site, "user", "add", "second@example.com", "--no-email")
    queue = site.var / "queue"
    assert forgot(server, CUSTOMER).status == 303
    maildir(site).wait_for(1)
    time.sleep(0.005)
    (queue / ".late").write_text("forgot\tsecond@example.com\ten\t192.0.2.9\n")
    (queue / ".late").rename(queue / "9999999999-1-late")
    mails = maildir(site).wait_for(2, timeout=3)
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == sorted([CUSTOMER, "second@example.com"])
    wait_idle(site)
    assert [p.name for p in queue.iterdir() if not p.name.startswith(".")] == []


def test_a_job_left_in_the_queue_is_worked_by_mail_deliver(make_site, apache):
    """A job whose worker never ran (killed, say) waits in var/queue until `latchkey mail
    deliver` (the cron job) works it: the request is not lost."""
    server = serve(make_site, apache)
    site = server.site
    add_customer(site)
    queue = site.var / "queue"
    queue.mkdir(exist_ok=True)
    (queue / "0000000001-1-stranded").write_text(f"forgot\t{CUSTOMER}\ten\t192.0.2.7\n")
    result = admin(site, "mail", "deliver")
    assert "1 queued web requests worked, 0 failed" in result.stdout
    mails = maildir(site).messages()
    assert [m["To"].addresses[0].addr_spec for m in mails] == [CUSTOMER] and mails[0]["Subject"] == EN_RESET_SUBJECT
    assert list(queue.iterdir()) == [queue / ".lock"]
    audit = site_sql(site, "SELECT remote_addr FROM audit WHERE action = 'reset.sent'")
    assert [row["remote_addr"] for row in audit] == ["192.0.2.7"]
