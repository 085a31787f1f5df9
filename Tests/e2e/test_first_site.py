"""What a new site meets first, as its owner and customers would (SPEC §3, §4, §6, §7):

1. a customer created without an offer sets a password and logs in: to the account page, told
   they have no access and whom to write to, with the members area and `session` closed;
2. the command line sends no link to a disabled person (`user reset`, `welcome resend`);
3. a POST with no body logs out (scripts, `fetch(url, {method: "POST"})`);
4. `/favicon.ico` exists, in a form browsers decode, and no page asks for a missing file;
5. `mail retry --failed` sends every failed message at once after the transport is fixed.

Server-facing checks run under Apache, nginx + fcgiwrap and lighttpd (one site and server per
kind for the module, stopped at teardown); command-line checks run against a fresh site.
"""
from __future__ import annotations

import html.parser
import http.client
import os
import re
import urllib.parse

import pytest

import maildir as mail
import test_servers as journeys
from lkserver import admin_ok, run_cgi, site_dump, site_sql
from servers import SERVER_KINDS, running

PASSWORD = "a password of my own"
NO_ACCESS = "don't have access to the members area right now"
SUPPORT = "help@example.com"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def srv(request, latchkey_path):
    with running(request.param, journeys.CONFIG) as server:
        yield server


def set_password_from_welcome(srv, address: str) -> None:
    welcome = journeys.messages_to(srv, address, 1)[0]
    token = mail.reset_token(welcome, srv.url)
    shown = srv.get(f"/cgi-bin/reset?token={token}")
    assert shown.status == 303 and journeys.where(shown) == srv.url + "/reset.html", journeys.describe(srv, shown)
    done = srv.post("/cgi-bin/reset", {"new_password": PASSWORD, "confirm_password": PASSWORD, "locale": "en"},
                    headers={"Cookie": f"lk_reset={token}"})
    assert done.status == 303 and journeys.where(done) == srv.url + "/reset-done.html", journeys.describe(srv, done)


# --- 1. a right password without access --------------------------------------------------------
def test_a_customer_without_access_is_logged_in_to_the_account_page_not_told_the_password_is_wrong(srv):
    address = f"mary.{srv.kind}@example.com"
    added = admin_ok(srv.site, "user", "add", address)
    lines = added.stdout.splitlines()
    assert lines[0] == "Account successfully created and reset password email sent.", lines
    assert lines[2] == (f"{address} has no access yet: latchkey access grant {address} OFFER gives it "
                        "(see latchkey offer list)."), lines
    set_password_from_welcome(srv, address)

    resp = journeys.login(srv, address, PASSWORD)
    assert resp.status == 303, journeys.describe(srv, resp)
    assert journeys.where(resp) == srv.url + "/account.no-access.html", journeys.describe(srv, resp)
    session = journeys.cookie(resp, "lk_session")
    assert session and len(session) == 43, resp.all("set-cookie")
    page = srv.get("/account.no-access.html")
    assert page.status == 200 and NO_ACCESS in page.text.replace("&#39;", "'") and SUPPORT in page.text, page.text[:2000]

    # The members area and the session check stay closed to that session.
    assert srv.get("/cgi-bin/session", headers=journeys.with_session(session)).status == 401
    members = srv.get("/members/", headers=journeys.with_session(session))
    assert members.status in (302, 303) and journeys.MEMBERS_TEXT not in members.text, journeys.describe(srv, members)

    # A wrong password is still only "don't match", with no session.
    wrong = journeys.login(srv, address, "not my password at all")
    assert journeys.where(wrong) == srv.url + "/login.invalid-login.html" and journeys.cookie(wrong, "lk_session") is None

    # The account page works for them: they can change their password there.
    changed = srv.post("/cgi-bin/account", {"current_password": PASSWORD, "new_password": PASSWORD + " 2",
                                            "confirm_password": PASSWORD + " 2", "locale": "en"},
                       headers=journeys.with_session(session))
    assert journeys.where(changed) == srv.url + "/account-done.html", journeys.describe(srv, changed)

    events = site_sql(srv.site, "SELECT action, detail FROM audit WHERE subject = '%s' AND action LIKE 'login.%%'" % address)
    assert {"action": "login.ok", "detail": "no active access: account page only"} in events, events
    assert {"action": "login.failed", "detail": "wrong password"} in events, events

    # Granted access, the same person reaches the members area.
    admin_ok(srv.site, "access", "grant", address, "members")
    again = journeys.login(srv, address, PASSWORD + " 2")
    assert journeys.where(again) == srv.url + "/members/", journeys.describe(srv, again)
    fresh = journeys.cookie(again, "lk_session")
    assert srv.get("/members/", headers=journeys.with_session(fresh)).status == 200


def test_the_no_access_message_speaks_the_login_pages_language(srv):
    address = f"marie.{srv.kind}@example.com"
    admin_ok(srv.site, "user", "add", address, "--no-email")
    admin_ok(srv.site, "user", "set-password", address, input=PASSWORD + "\n")
    resp = srv.post("/cgi-bin/login", {"email": address, "password": PASSWORD, "locale": "fr"})
    assert journeys.where(resp) == srv.url + "/fr/account.no-access.html", journeys.describe(srv, resp)
    page = srv.get("/fr/account.no-access.html")
    assert page.status == 200 and "espace membres" in page.text and SUPPORT in page.text


# --- 3. a POST with no body ----------------------------------------------------------------------
def bare_post(srv, path: str, headers: dict, content_length: bool) -> tuple[int, dict]:
    """A POST with no body and no Content-Type; with or without `Content-Length: 0`."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=20)
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        if content_length:
            conn.putheader("Content-Length", "0")
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length-0", "no-content-length"])
def test_a_post_with_no_body_logs_out(srv, content_length):
    address = journeys.new_customer(srv)
    session = journeys.cookie(journeys.login(srv, address, journeys.PASSWORD), "lk_session")
    assert srv.get("/cgi-bin/session", headers=journeys.with_session(session)).status == 204
    if not content_length and srv.kind == "lighttpd":
        pytest.skip("lighttpd answers a POST without Content-Length with 411 itself, before any CGI runs")
    status, headers = bare_post(srv, "/cgi-bin/logout", journeys.with_session(session), content_length)
    assert status == 303 and headers.get("location") == srv.url + "/login.signed-out.html", (status, headers)
    assert srv.get("/cgi-bin/session", headers=journeys.with_session(session)).status == 401


def test_a_bodiless_logout_cgi_without_type_or_length_is_a_logout_and_a_typed_body_still_415(make_site):
    site = make_site()
    for length in (None, 0):
        answer = run_cgi(site, "logout", body=b"", content_type=None, content_length=length)
        assert answer.status == 303 and answer.headers["location"].endswith("/login.signed-out.html"), answer
    refused = run_cgi(site, "logout", body=b"locale=en", content_type="text/plain")
    assert refused.status == 415, refused


# --- 4. the icon ---------------------------------------------------------------------------------
class Links(html.parser.HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append(value)


def test_favicon_is_served_as_an_svg_the_browser_decodes(srv):
    resp = srv.get("/favicon.ico")
    assert resp.status == 200, journeys.describe(srv, resp)
    assert resp.headers.get("content-type", "").split(";")[0] == "image/svg+xml", resp.headers
    logo = (srv.site.dir / "assets" / "logo.svg").read_bytes()
    assert resp.body == logo


def test_no_generated_page_or_members_page_asks_for_a_missing_file(srv):
    public = srv.site.public
    pages = [p for p in public.rglob("*.html")]
    assert len(pages) > 30, pages
    asked: set[str] = set()
    for page in pages:
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        base = "/" + str(page.relative_to(public))
        asked |= {urllib.parse.urljoin(base, link) for link in parser.found}
    parser = Links()
    parser.feed((srv.site.dir / "members" / "index.html").read_text(encoding="utf-8"))
    assert "/favicon.ico" in parser.found, "the default members page names no icon"
    local = sorted(a for a in asked if a.startswith("/") and not a.startswith("//")
                   and not a.startswith(("/cgi-bin/", "/members/")))
    missing = [a for a in local if srv.get(urllib.parse.urlsplit(a).path).status != 200]
    assert not missing, f"{srv.kind}: pages link files that are not there: {missing}"


def test_a_png_favicon_becomes_an_ico_holding_it(make_site):
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000200000002008060000007a7af4")  # a 32x32 PNG's head
    site = make_site(_build=False)
    (site.dir / "assets" / "icon.png").write_bytes(png + b"\0" * 40)
    site.update_config(brand={"favicon": "assets/icon.png"})
    site.build(check=True)
    ico = (site.public / "favicon.ico").read_bytes()
    assert ico[:6] == b"\0\0\1\0\1\0", ico[:6]
    assert ico[6] == 32 and ico[7] == 32, ico[6:8]
    assert int.from_bytes(ico[18:22], "little") == 22 and ico[22:] == png + b"\0" * 40
    assert "ForceType image/svg+xml" not in site.latchkey("webserver", "apache").stdout
    site.update_config(brand={"favicon": "assets/icon.gif"})
    refused = site.build()
    assert refused.returncode != 0 and "brand.favicon" in refused.stderr, refused.stderr


# --- 2. no link to a disabled person --------------------------------------------------------------
@pytest.mark.parametrize("password", [False, True], ids=["never-set-a-password", "has-a-password"])
def test_the_command_line_sends_no_link_to_a_disabled_person(make_site, password):
    site = make_site()
    address = "dora@example.com"
    admin_ok(site, "offer", "add", "gold", "--name", "Gold")
    admin_ok(site, "user", "add", address, "--offer", "gold", "--no-email")
    if password:
        admin_ok(site, "user", "set-password", address, input=PASSWORD + "\n")
    admin_ok(site, "user", "disable", address)
    before = site_dump(site, "reset_token", "mail")
    box = mail.Mailbox(site.var / "mail")
    for command in (("user", "reset", address), ("welcome", "resend", address)):
        result = site.latchkey(*command)
        assert result.returncode != 0, result.stdout
        assert result.stdout == ""
        assert result.stderr == f"error: {address} is disabled: enable login first (latchkey user enable {address})\n"
    assert site_dump(site, "reset_token", "mail") == before
    assert box.count() == 0
    admin_ok(site, "user", "enable", address)
    sent = admin_ok(site, "user", "reset", address)
    assert sent.stdout.startswith("Reset password email sent.\n")


# --- 5. retry every failed message ----------------------------------------------------------------
def site_with_mail_down(make_site):
    """A site with a `gold` offer whose sendmail always fails (exit 75, as on a relay outage)."""
    site = make_site()
    failing = site.top / "sendmail-down.sh"
    failing.write_text("#!/bin/sh\ncat >/dev/null\necho 'relay unreachable' >&2\nexit 75\n")
    failing.chmod(0o755)
    site.update_config(mail={"transport": f"sendmail:{failing}", "retry_after": "1h"})
    admin_ok(site, "offer", "add", "gold", "--name", "Gold")
    return site


def test_mail_retry_failed_sends_every_failed_message_now(make_site):
    site = site_with_mail_down(make_site)
    addresses = [f"p{i}@example.com" for i in range(3)]
    for address in addresses:
        result = site.latchkey("user", "add", address, "--offer", "gold")
        assert result.returncode == 0 and "could not be delivered" in result.stderr, result.stderr
    assert len(site_sql(site, "SELECT id FROM mail WHERE status = 'failed'")) == 3

    # Fixed, but every message waits out its backoff: deliver sends nothing.
    site.update_config(mail={"transport": "maildir:var/mail"})
    assert admin_ok(site, "mail", "deliver").stdout.strip() == "mail deliver: 0 sent, 0 failed, 3 waiting"
    result = admin_ok(site, "mail", "retry", "--failed")
    assert result.stdout == "mail retry: 3 sent, 0 failed again\n", result.stdout
    box = mail.Mailbox(site.var / "mail")
    assert sorted(mail.recipient(m) for m in box.messages()) == addresses
    assert site_sql(site, "SELECT count(*) AS n FROM mail WHERE status = 'sent'") == [{"n": 3}]
    assert admin_ok(site, "mail", "retry", "--failed").stdout == "mail retry: 0 sent, 0 failed again\n"
    assert box.count() == 3


def test_mail_retry_failed_says_in_one_line_what_failed_again(make_site):
    site = site_with_mail_down(make_site)
    site.latchkey("user", "add", "q@example.com", "--offer", "gold")
    result = site.latchkey("mail", "retry", "--failed")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "error: mail retry: 0 sent, 1 failed again (see latchkey mail log --failed)\n", result.stderr
    both = site.latchkey("mail", "retry", "1", "--failed")
    assert both.returncode == 1 and both.stderr.count("\n") == 1, both.stderr
