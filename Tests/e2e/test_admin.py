"""End-to-end tests of the admin command line (`latchkey user|contact|access|offer|welcome|
mail|import ...`, SPEC §5–§6).

Every test drives the built `latchkey` binary as a process against a fresh site; the web
checks run against a private Apache (the `apache` fixture) with the real CGIs. Admin
commands run as root, so every call goes through `lk()`, which hands var/ back to www-data
before the next web request.
"""
from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import re
import select
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lkserver import ApacheServer, Site, latchkey_bin, poll, run_latchkey

MAIL_TIMEOUT = 15.0
TOKEN_LINK = r"/cgi-bin/reset\?token=[A-Za-z0-9_-]{20,}"
PASSWORD = "correct horse battery staple"

ADD_SENT = "Account successfully created and reset password email sent."
ADD_NO_EMAIL = "Account successfully created."
NO_ACCESS_YET = "{0} has no access yet: latchkey access grant {0} OFFER gives it (see latchkey offer list)."
RESET_SENT = "Reset password email sent."

SUBJECT_WELCOME = "Your new account is ready"
SUBJECT_TEMPORARY = "A temporary password was set for your account"
SUBJECT_EMAIL_CHANGED = "The email address on your account was changed"


# --- running the tool ---------------------------------------------------------------------

def lk(site: Site, *args, **kwargs) -> subprocess.CompletedProcess:
    """`latchkey ARGS --config SITE`, then var/ back to www-data (root may have created the
    database, its -wal/-shm or mail files)."""
    result = site.latchkey(*args, **kwargs)
    site.chown_var()
    return result


def ok(site: Site, *args, **kwargs) -> subprocess.CompletedProcess:
    result = lk(site, *args, **kwargs)
    assert result.returncode == 0, (f"latchkey {' '.join(map(str, args))} failed ({result.returncode}):\n"
                                    f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def assert_one_line_error(result, startswith: str = "error: ") -> str:
    """Non-zero exit, nothing on stdout, exactly one `error: …` line on stderr."""
    assert result.returncode == 1, f"expected exit 1, got {result.returncode}: {result.stdout}{result.stderr}"
    assert result.stdout == "", f"an error printed on stdout: {result.stdout!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith(startswith), lines[0]
    return lines[0]


def lines_of(result) -> list[str]:
    return result.stdout.splitlines()


def show_json(site: Site, address: str) -> dict:
    return json.loads(ok(site, "user", "show", address, "--json").stdout)


def set_password(site: Site, address: str, password: str, *flags) -> subprocess.CompletedProcess:
    return ok(site, "user", "set-password", address, *flags, input=password + "\n")


# --- database -----------------------------------------------------------------------------

def db_path(site: Site) -> Path:
    return site.dir / "var" / "latchkey.sqlite3"


def db_dump(site: Site) -> str:
    """`sqlite3 DB .dump` — every row of every table, as text."""
    result = subprocess.run(["sqlite3", str(db_path(site)), ".dump"], capture_output=True, text=True, timeout=60)
    site.chown_var()
    assert result.returncode == 0, result.stderr
    return result.stdout


def query(site: Site, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(str(db_path(site)), timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
        site.chown_var()


# --- mail ---------------------------------------------------------------------------------

@dataclass
class Mail:
    path: Path
    raw: bytes
    subject: str
    to: str
    body: str  # every text part, decoded


def read_maildir(site: Site) -> list[Mail]:
    """Every message in SITE/var/mail/{new,cur}, oldest file name first."""
    out = []
    for sub in ("new", "cur"):
        folder = site.var / "mail" / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            raw = path.read_bytes()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            texts = [part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"]
            out.append(Mail(path, raw, str(msg["Subject"] or ""), str(msg["To"] or ""), "\n".join(texts)))
    return out


def mails_to(site: Site, address: str, subject: str | None = None) -> list[Mail]:
    return [m for m in read_maildir(site)
            if address.lower() in m.to.lower() and (subject is None or m.subject == subject)]


def wait_for_mail(site: Site, address: str, subject: str | None = None, count: int = 1,
                  timeout: float = MAIL_TIMEOUT) -> list[Mail]:
    deadline = time.monotonic() + timeout
    while True:
        found = mails_to(site, address, subject)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} message(s) to {address} (subject {subject!r}) within {timeout}s; "
                                 f"mailbox: {[(m.to, m.subject) for m in read_maildir(site)]}")
        time.sleep(0.1)


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def sendmail_scripts(site: Site) -> tuple[Path, Path, Path]:
    """(failing script, working script, the file the working one appends to)."""
    sink = site.top / "sendmail-out.txt"
    failing = write_script(site.top / "sendmail-fail.sh",
                           'cat >/dev/null\necho "simulated outage" >&2\nexit 75\n')
    working = write_script(site.top / "sendmail-ok.sh",
                           f'echo "ARGS: $*" >> "{sink}"\ncat >> "{sink}"\necho "--END--" >> "{sink}"\n')
    return failing, working, sink


# --- web ----------------------------------------------------------------------------------

def link_in(text: str, base: str) -> str:
    found = re.findall(re.escape(base) + TOKEN_LINK, text)
    assert found, f"no reset link for {base} in {text!r}"
    return found[0]


def path_of(link: str, server: ApacheServer) -> str:
    assert link.startswith(server.url + "/"), link
    return link[len(server.url):]


def cookie_value(resp, name: str) -> str | None:
    for header in resp.all("set-cookie"):
        first = header.split(";", 1)[0]
        key, _, value = first.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


def follow_link(server: ApacheServer, link: str):
    return server.get(path_of(link, server))


def reset_via_web(server: ApacheServer, link: str, new_password: str) -> None:
    """GET link → reset.html with the lk_reset cookie; POST the new password → reset-done.html."""
    got = follow_link(server, link)
    assert got.status == 303, (got.status, got.text)
    assert got.headers["location"] == server.url + "/reset.html", got.headers.get("location")
    token_cookie = cookie_value(got, "lk_reset")
    assert token_cookie, f"no lk_reset cookie: {got.all('set-cookie')}"
    posted = server.post("/cgi-bin/reset", {"new_password": new_password, "confirm_password": new_password},
                         headers={"Cookie": f"lk_reset={token_cookie}"})
    assert posted.status == 303, (posted.status, posted.text)
    assert posted.headers["location"] == server.url + "/reset-done.html", posted.headers.get("location")


def login(server: ApacheServer, address: str, password: str):
    return server.post("/cgi-bin/login", {"email": address, "password": password})


def login_session(server: ApacheServer, address: str, password: str) -> str:
    """Logs in (expects the members area) and returns the lk_session cookie value."""
    resp = login(server, address, password)
    assert resp.status == 303, (resp.status, resp.text)
    assert resp.headers["location"] == server.url + "/members/", resp.headers.get("location")
    session = cookie_value(resp, "lk_session")
    assert session, resp.all("set-cookie")
    return session


def session_status(server: ApacheServer, session: str) -> int:
    return server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={session}"}).status


def assert_login_refused(server: ApacheServer, address: str, password: str) -> None:
    resp = login(server, address, password)
    assert resp.status == 303, (resp.status, resp.text)
    assert resp.headers["location"] == server.url + "/login.invalid-login.html", resp.headers.get("location")
    assert cookie_value(resp, "lk_session") in (None, ""), resp.all("set-cookie")


def assert_link_expired(server: ApacheServer, link: str) -> None:
    resp = follow_link(server, link)
    assert resp.status == 303, (resp.status, resp.text)
    assert resp.headers["location"] == server.url + "/expired.html", resp.headers.get("location")
    assert cookie_value(resp, "lk_reset") in (None, ""), resp.all("set-cookie")


def assert_link_valid(server: ApacheServer, link: str) -> None:
    resp = follow_link(server, link)
    assert resp.status == 303, (resp.status, resp.text)
    assert resp.headers["location"] == server.url + "/reset.html", resp.headers.get("location")


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def site(make_site) -> Site:
    """A fresh site with one offer, `gold`."""
    s = make_site()
    ok(s, "offer", "add", "gold", "--name", "Gold Plan")
    return s


@pytest.fixture
def served(site, apache) -> tuple[Site, ApacheServer]:
    """`site` behind a private Apache (base_url points at it)."""
    return site, apache(site)


# === 1. user add / user reset: exact messages, printed links, the web flow ===============

def test_user_add_prints_exact_message_and_welcome_link_and_emails_it(served):
    site, server = served
    result = ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--offer", "gold")
    out = lines_of(result)
    assert out[0] == ADD_SENT
    assert re.fullmatch(re.escape(server.url) + TOKEN_LINK, out[1]), out
    assert len(out) == 2, out
    link = out[1]

    welcome = wait_for_mail(site, "ann@example.com", SUBJECT_WELCOME)
    assert len(welcome) == 1
    assert link in welcome[0].body

    record = show_json(site, "ann@example.com")
    assert record["reset"]["link"] == link
    assert record["reset"]["expires_at"] - record["reset"]["sent_at"] == 7 * 86400, record["reset"]
    assert_link_valid(server, link)


def test_user_add_no_email_prints_short_message_and_sends_nothing(site):
    result = ok(site, "user", "add", "quiet@example.com", "--no-email")
    assert result.stdout == ADD_NO_EMAIL + "\n" + NO_ACCESS_YET.format("quiet@example.com") + "\n"
    assert mails_to(site, "quiet@example.com") == []
    assert show_json(site, "quiet@example.com")["email_history"] == []


def test_user_add_existing_address_fails_with_one_error_line_and_changes_nothing(site):
    ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--no-email")
    before = db_dump(site)
    result = lk(site, "user", "add", "ANN@example.com", "--name", "Someone Else")
    assert_one_line_error(result)
    assert db_dump(site) == before
    assert show_json(site, "ann@example.com")["name"] == "Ann Smith"


def test_user_reset_prints_message_and_link_that_sets_password_through_web(served):
    site, server = served
    ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--offer", "gold", "--no-email")
    result = ok(site, "user", "reset", "ann@example.com")
    out = lines_of(result)
    assert out[0] == RESET_SENT
    assert re.fullmatch(re.escape(server.url) + TOKEN_LINK, out[1]), out
    assert out[2].startswith("Expires"), out
    link = out[1]
    record = show_json(site, "ann@example.com")
    assert record["reset"]["expires_at"] - record["reset"]["sent_at"] == 24 * 3600, record["reset"]
    assert link in wait_for_mail(site, "ann@example.com")[0].body

    reset_via_web(server, link, PASSWORD)
    login_session(server, "ann@example.com", PASSWORD)
    assert_link_expired(server, link)  # single use


def test_user_reset_unknown_address_fails_with_one_error_line(site):
    result = lk(site, "user", "reset", "nobody@example.com")
    line = assert_one_line_error(result, "error: no one with the address nobody@example.com")
    assert line


# === 2. reuse window ======================================================================

SHORT_RESET = {"reset": {"link_lifetime": "8s", "reuse_window": "3s"}}


def test_user_reset_reuses_link_within_window_and_issues_new_link_after(make_site, apache):
    site = make_site(**SHORT_RESET)
    ok(site, "offer", "add", "gold", "--name", "Gold Plan")
    server = apache(site)
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")

    first = ok(site, "user", "reset", "ann@example.com")
    second = ok(site, "user", "reset", "ann@example.com")
    link1, link2 = lines_of(first)[1], lines_of(second)[1]
    assert lines_of(second)[0] == RESET_SENT
    assert link2 == link1, "inside the reuse window the same link must be re-sent"
    assert "reuse window" in second.stdout, second.stdout
    sent_at = show_json(site, "ann@example.com")["reset"]["sent_at"]

    # wait out the 3s window (the clock is in whole seconds)
    poll(lambda: time.time() >= sent_at + 4, timeout=10, interval=0.2, what="the reuse window to pass")
    third = ok(site, "user", "reset", "ann@example.com")
    assert lines_of(third)[0] == RESET_SENT
    link3 = lines_of(third)[1]
    assert link3 != link1, "after the reuse window a new link must be issued"
    assert "reuse window" not in third.stdout, third.stdout

    assert_link_expired(server, link1)
    assert_link_valid(server, link3)
    # both emails went out, each with its own link
    bodies = [m.body for m in wait_for_mail(site, "ann@example.com", count=3)]
    assert any(link3 in b for b in bodies)


# === 3. contacts ==========================================================================

def test_user_reset_refuses_contact_until_access_is_granted(served):
    site, server = served
    ok(site, "contact", "add", "carl@example.com", "--name", "Carl")
    refused = lk(site, "user", "reset", "carl@example.com")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == "error: carl@example.com is a contact, not a customer: grant access first\n"
    assert mails_to(site, "carl@example.com") == []
    assert show_json(site, "carl@example.com")["kind"] == "contact"

    granted = ok(site, "access", "grant", "carl@example.com", "gold")
    grant_link = link_in(granted.stdout, server.url)
    welcome = wait_for_mail(site, "carl@example.com", SUBJECT_WELCOME)
    assert grant_link in welcome[0].body
    assert show_json(site, "carl@example.com")["kind"] == "customer"

    reset = ok(site, "user", "reset", "carl@example.com")
    assert lines_of(reset)[0] == RESET_SENT
    reset_via_web(server, lines_of(reset)[1], PASSWORD)
    login_session(server, "carl@example.com", PASSWORD)


def test_access_grant_no_email_sends_no_welcome(site):
    ok(site, "contact", "add", "carl@example.com")
    result = ok(site, "access", "grant", "carl@example.com", "gold", "--no-email")
    assert "/cgi-bin/reset?token=" not in result.stdout
    assert mails_to(site, "carl@example.com") == []
    record = show_json(site, "carl@example.com")
    assert record["kind"] == "customer"
    assert record["email_history"] == []


# === 4. user show: reset status, failed mail, retry =======================================

def test_user_show_lists_reset_link_within_reuse_window_and_not_after(make_site):
    site = make_site(**SHORT_RESET)
    ok(site, "offer", "add", "gold", "--name", "Gold Plan")
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    link = lines_of(ok(site, "user", "reset", "ann@example.com"))[1]

    shown = lines_of(ok(site, "user", "show", "ann@example.com"))
    reset_lines = [i for i, line in enumerate(shown) if line.startswith("  reset     Reset password email sent")]
    assert reset_lines, shown
    assert link in shown[reset_lines[0] + 1], shown
    record = show_json(site, "ann@example.com")
    assert record["reset"]["link"] == link
    assert {"link", "sent_at", "sent_by", "expires_at"} <= set(record["reset"])

    sent_at = record["reset"]["sent_at"]
    poll(lambda: time.time() >= sent_at + 4, timeout=10, interval=0.2, what="the reuse window to pass")
    after = ok(site, "user", "show", "ann@example.com").stdout
    assert "Reset password email sent" not in after.split("email history")[0], after
    assert link not in after, after
    assert show_json(site, "ann@example.com")["reset"] is None


def test_user_show_reports_failed_mail_and_mail_retry_delivers_it(site):
    failing, working, sink = sendmail_scripts(site)
    site.update_config(mail={"transport": f"sendmail:{failing}", "retry_after": "1h"})
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    reset = lk(site, "user", "reset", "ann@example.com")
    link = link_in(reset.stdout, site.read_config()["base_url"])

    record = show_json(site, "ann@example.com")
    failed = [m for m in record["email_history"] if m["status"] == "failed"]
    assert len(failed) == 1, record["email_history"]
    msg = failed[0]
    assert msg["kind"] == "reset" and msg["recipient"] == "ann@example.com" and msg["attempts"] == 1
    assert "simulated outage" in msg["last_error"], msg
    mail_id = msg["id"]

    shown = lines_of(ok(site, "user", "show", "ann@example.com"))
    row = [i for i, line in enumerate(shown) if re.match(rf"\s*#{mail_id}\s+\S.*\s+failed\s+reset\s+ann@example\.com\s+\".+\"$", line)]
    assert row, shown
    detail = shown[row[0] + 1]
    assert "error (attempt 1):" in detail and "simulated outage" in detail, detail
    assert f"latchkey mail retry {mail_id}" in detail, detail

    failed_log = ok(site, "mail", "log", "--failed").stdout
    assert f"#{mail_id}" in failed_log and "simulated outage" in failed_log

    # the transport works again, but the message is not due for an hour
    site.update_config(mail={"transport": f"sendmail:{working}"})
    deliver = ok(site, "mail", "deliver")
    assert deliver.stdout.strip() == "mail deliver: 0 sent, 0 failed, 1 waiting", deliver.stdout
    assert not sink.exists()

    retried = ok(site, "mail", "retry", str(mail_id))
    assert retried.stderr == ""
    delivered = sink.read_text()
    assert delivered.startswith("ARGS: -t -i\n"), delivered[:200]
    assert "ann@example.com" in delivered and link in delivered
    after = show_json(site, "ann@example.com")
    assert [m["status"] for m in after["email_history"] if m["id"] == mail_id] == ["sent"]
    assert f"#{mail_id}" not in ok(site, "mail", "log", "--failed").stdout
    again = lk(site, "mail", "retry", str(mail_id))
    assert_one_line_error(again)


def test_mail_deliver_sends_failed_message_once_retry_delay_has_passed(site):
    failing, working, sink = sendmail_scripts(site)
    site.update_config(mail={"transport": f"sendmail:{failing}", "retry_after": "1s"})
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    lk(site, "user", "reset", "ann@example.com")
    assert [m["status"] for m in show_json(site, "ann@example.com")["email_history"]] == ["failed"]

    site.update_config(mail={"transport": f"sendmail:{working}"})
    outputs = []

    def delivered():
        result = ok(site, "mail", "deliver")
        outputs.append(result.stdout.strip())
        assert re.fullmatch(r"mail deliver: \d+ sent, \d+ failed, \d+ waiting", outputs[-1]), outputs[-1]
        return outputs[-1] == "mail deliver: 1 sent, 0 failed, 0 waiting"

    poll(delivered, timeout=10, interval=0.3, what="mail deliver to send the message")
    assert "ann@example.com" in sink.read_text()
    assert [m["status"] for m in show_json(site, "ann@example.com")["email_history"]] == ["sent"]
    assert ok(site, "mail", "deliver").stdout.strip() == "mail deliver: 0 sent, 0 failed, 0 waiting"


# === 5. set-password ======================================================================

def test_set_password_reads_first_stdin_line_voids_links_and_ends_sessions(served):
    site, server = served
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    ok(site, "user", "set-password", "ann@example.com", input=f"{PASSWORD}\nsecond line is ignored\n")
    session = login_session(server, "ann@example.com", PASSWORD)
    assert session_status(server, session) == 204
    link = lines_of(ok(site, "user", "reset", "ann@example.com"))[1]

    set_password(site, "ann@example.com", "another long passphrase")
    assert session_status(server, session) == 401
    assert_link_expired(server, link)
    assert_login_refused(server, "ann@example.com", PASSWORD)
    login_session(server, "ann@example.com", "another long passphrase")


def test_set_password_never_takes_the_password_from_argv(site):
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    before = db_dump(site)
    positional = lk(site, "user", "set-password", "ann@example.com", "argv password 123", input="")
    assert positional.returncode != 0
    option = lk(site, "user", "set-password", "ann@example.com", "--password", "argv password 123", input="")
    assert option.returncode != 0
    assert db_dump(site) == before
    assert show_json(site, "ann@example.com")["password"] == "never set"


def test_temporary_password_forces_change_at_login_and_notify_mail_omits_it(served):
    site, server = served
    temporary = "Tmp-Pass-4471-zebra"
    ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--offer", "gold", "--no-email")
    set_password(site, "ann@example.com", PASSWORD)
    session = login_session(server, "ann@example.com", PASSWORD)

    set_password(site, "ann@example.com", temporary, "--temporary", "--notify")
    assert session_status(server, session) == 401
    assert_login_refused(server, "ann@example.com", PASSWORD)
    resp = login(server, "ann@example.com", temporary)
    assert resp.status == 303, (resp.status, resp.text)
    assert resp.headers["location"] == server.url + "/account.must-change.html"

    notice = wait_for_mail(site, "ann@example.com", SUBJECT_TEMPORARY)
    assert len(notice) == 1
    assert temporary not in notice[0].body
    assert temporary.encode() not in notice[0].raw
    history = ok(site, "mail", "log", "ann@example.com", "--json").stdout
    assert temporary not in history
    assert any(m["subject"] == SUBJECT_TEMPORARY for m in json.loads(history))
    assert temporary not in ok(site, "user", "show", "ann@example.com").stdout
    audit = query(site, "SELECT actor, action, subject, detail FROM audit")
    assert audit and temporary not in repr(audit)
    assert temporary not in db_dump(site)


def test_set_password_without_notify_sends_no_email(site):
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    set_password(site, "ann@example.com", PASSWORD, "--temporary")
    assert mails_to(site, "ann@example.com") == []
    assert show_json(site, "ann@example.com")["email_history"] == []


# === 6. set-email, disable/enable, delete, revoke ========================================

def test_set_email_moves_login_and_links_to_new_address_and_tells_old_one(served):
    site, server = served
    old, new = "ann@example.com", "ann.new@example.org"
    ok(site, "user", "add", old, "--name", "Ann Smith", "--offer", "gold", "--no-email")
    set_password(site, old, PASSWORD)
    session = login_session(server, old, PASSWORD)
    link = lines_of(ok(site, "user", "reset", old))[1]
    wait_for_mail(site, old)

    ok(site, "user", "set-email", old, new)
    assert session_status(server, session) == 401
    assert_link_expired(server, link)
    told = wait_for_mail(site, old, SUBJECT_EMAIL_CHANGED)
    assert len(told) == 1
    assert old in email.message_from_bytes(told[0].raw, policy=email.policy.default)["To"].addresses[0].addr_spec
    assert mails_to(site, new, SUBJECT_EMAIL_CHANGED) == []

    assert_login_refused(server, old, PASSWORD)
    login_session(server, new, PASSWORD)
    assert_one_line_error(lk(site, "user", "reset", old), "error: no one with the address")
    assert_one_line_error(lk(site, "user", "show", old))
    assert show_json(site, new)["email"] == new

    to_old_before = len(mails_to(site, old))
    for address in (old, new):
        resp = server.post("/cgi-bin/forgot", {"email": address})
        assert resp.status == 303 and resp.headers["location"] == server.url + "/forgot-sent.html", resp.headers
    wait_for_mail(site, new, "Reset your password")
    time.sleep(0.5)  # the old address's request was answered first; give its mail (if any) a moment
    assert len(mails_to(site, old)) == to_old_before, [m.subject for m in mails_to(site, old)]


def test_set_email_to_an_address_in_use_is_refused(site):
    ok(site, "user", "add", "ann@example.com", "--no-email")
    ok(site, "user", "add", "bob@example.com", "--no-email")
    before = db_dump(site)
    assert_one_line_error(lk(site, "user", "set-email", "ann@example.com", "bob@example.com"))
    assert db_dump(site) == before


def test_disable_closes_login_generically_and_enable_reopens_it(served):
    site, server = served
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    set_password(site, "ann@example.com", PASSWORD)
    session = login_session(server, "ann@example.com", PASSWORD)

    ok(site, "user", "disable", "ann@example.com")
    assert session_status(server, session) == 401
    assert_login_refused(server, "ann@example.com", PASSWORD)
    # the same answer as for an address that has no account
    assert_login_refused(server, "nobody@example.com", PASSWORD)
    assert show_json(site, "ann@example.com")["disabled"] is True

    ok(site, "user", "enable", "ann@example.com")
    login_session(server, "ann@example.com", PASSWORD)


def test_delete_without_yes_changes_nothing(site):
    ok(site, "user", "add", "zelda@example.com", "--name", "Zelda Quux", "--offer", "gold")
    before = db_dump(site)
    result = lk(site, "user", "delete", "zelda@example.com")
    assert_one_line_error(result)
    assert db_dump(site) == before
    assert show_json(site, "zelda@example.com")["email"] == "zelda@example.com"


def test_delete_yes_erases_person_tokens_sessions_grants_and_mail(served):
    site, server = served
    address, name = "zelda@example.com", "Zelda Quux"
    ok(site, "user", "add", address, "--name", name, "--offer", "gold")
    set_password(site, address, PASSWORD, "--notify")
    session = login_session(server, address, PASSWORD)
    link = lines_of(ok(site, "user", "reset", address))[1]
    ok(site, "user", "disable", address)
    ok(site, "user", "enable", address)
    dump = db_dump(site).lower()
    assert address in dump and name.lower() in dump  # the check below can see them

    ok(site, "user", "delete", address, "--yes")
    dump = db_dump(site).lower()
    leftovers = [line for line in dump.splitlines() if address in line or name.lower() in line]
    assert leftovers == [], leftovers
    assert query(site, "SELECT count(*) FROM person") == [(0,)]
    for table in ("reset_token", "session", "access_grant", "mail"):
        assert query(site, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert query(site, "SELECT count(*) FROM audit WHERE action LIKE '%delete%'")[0][0] >= 1

    assert_one_line_error(lk(site, "user", "show", address))
    assert session_status(server, session) == 401
    assert_link_expired(server, link)
    assert_login_refused(server, address, PASSWORD)
    assert ok(site, "user", "find", "zelda", "--json").stdout.strip() == "[]"


def test_revoking_last_grant_ends_sessions_and_login_opens_only_the_account_page(served):
    site, server = served
    ok(site, "offer", "add", "silver", "--name", "Silver Plan")
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    ok(site, "access", "grant", "ann@example.com", "silver", "--no-email")
    set_password(site, "ann@example.com", PASSWORD)
    session = login_session(server, "ann@example.com", PASSWORD)

    ok(site, "access", "revoke", "ann@example.com", "gold")
    assert session_status(server, session) == 204, "one grant left: the session stays"
    ok(site, "access", "revoke", "ann@example.com", "silver")
    assert session_status(server, session) == 401
    # The right password without access: the account page, with a session the members area refuses.
    resp = login(server, "ann@example.com", PASSWORD)
    assert resp.headers["location"] == server.url + "/account.no-access.html", resp.headers.get("location")
    assert session_status(server, cookie_value(resp, "lk_session")) == 401

    ok(site, "access", "grant", "ann@example.com", "gold", "--no-email")
    login_session(server, "ann@example.com", PASSWORD)


# === welcome resend =======================================================================

def test_welcome_resend_without_password_resends_same_set_password_link(served):
    site, server = served
    link = lines_of(ok(site, "user", "add", "ann@example.com", "--offer", "gold"))[1]
    wait_for_mail(site, "ann@example.com", SUBJECT_WELCOME)
    ok(site, "welcome", "resend", "ann@example.com")
    welcomes = wait_for_mail(site, "ann@example.com", SUBJECT_WELCOME, count=2)
    assert len(welcomes) == 2
    assert all(link in m.body for m in welcomes), [m.body for m in welcomes]
    assert_link_valid(server, link)


def test_welcome_resend_with_password_sends_login_link_and_keeps_password(served):
    site, server = served
    ok(site, "user", "add", "ann@example.com", "--offer", "gold", "--no-email")
    set_password(site, "ann@example.com", PASSWORD)
    before = query(site, "SELECT password_hash FROM person WHERE email = 'ann@example.com'")
    ok(site, "welcome", "resend", "ann@example.com")
    welcome = wait_for_mail(site, "ann@example.com", SUBJECT_WELCOME)
    assert len(welcome) == 1
    assert "/cgi-bin/reset?token=" not in welcome[0].body
    assert server.url + "/login.html" in welcome[0].body
    assert query(site, "SELECT password_hash FROM person WHERE email = 'ann@example.com'") == before
    login_session(server, "ann@example.com", PASSWORD)


# === find, offers, JSON ===================================================================

def test_user_find_matches_email_and_name_substrings_case_insensitively(site):
    ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--no-email")
    ok(site, "user", "add", "bob@corp.test", "--name", "Bob Jones", "--no-email")
    ok(site, "contact", "add", "carl@example.net", "--name", "Carl Smithers")

    def found(q):
        return sorted(p["email"] for p in json.loads(ok(site, "user", "find", q, "--json").stdout))

    assert found("SMITH") == ["ann@example.com", "carl@example.net"]
    assert found("CORP") == ["bob@corp.test"]
    assert found("jones") == ["bob@corp.test"]
    assert found("example") == ["ann@example.com", "carl@example.net"]
    assert found("nobody-matches-this") == []
    text = ok(site, "user", "find", "smith").stdout
    assert "ann@example.com" in text and "carl@example.net" in text and "bob@corp.test" not in text


def test_offer_add_and_list_show_the_offer(site):
    ok(site, "offer", "add", "silver", "--name", "Silver Plan")
    offers = json.loads(ok(site, "offer", "list", "--json").stdout)
    by_slug = {o["slug"]: o for o in offers}
    assert by_slug["gold"]["name"] == "Gold Plan" and by_slug["silver"]["name"] == "Silver Plan"
    text = ok(site, "offer", "list").stdout
    assert "silver" in text and "Silver Plan" in text
    assert_one_line_error(lk(site, "offer", "add", "gold", "--name", "Again"))
    assert_one_line_error(lk(site, "user", "add", "x@example.com", "--offer", "no-such-offer"))
    assert_one_line_error(lk(site, "user", "show", "x@example.com"))


def test_json_outputs_parse_with_documented_keys(site):
    ok(site, "user", "add", "ann@example.com", "--name", "Ann Smith", "--offer", "gold")
    ok(site, "contact", "add", "carl@example.com")
    record = show_json(site, "ann@example.com")
    assert {"email", "name", "kind", "status", "access", "reset", "email_history"} <= set(record)
    assert record["email"] == "ann@example.com" and record["name"] == "Ann Smith"
    assert record["kind"] == "customer"
    assert {"link", "sent_at", "sent_by", "expires_at"} <= set(record["reset"])
    assert record["email_history"]
    for entry in record["email_history"]:
        assert {"id", "kind", "recipient", "subject", "status", "attempts", "last_error"} <= set(entry)
    assert show_json(site, "carl@example.com")["reset"] is None

    assert isinstance(json.loads(ok(site, "user", "find", "example", "--json").stdout), list)
    assert isinstance(json.loads(ok(site, "offer", "list", "--json").stdout), list)
    log = json.loads(ok(site, "mail", "log", "--json").stdout)
    assert isinstance(log, list) and log and {"id", "status", "recipient", "subject"} <= set(log[0])
    assert json.loads(ok(site, "mail", "log", "--failed", "--json").stdout) == []
    assert json.loads(ok(site, "mail", "log", "carl@example.com", "--json").stdout) == []


# === audit ================================================================================

def test_audit_actor_is_user_from_environment(site, monkeypatch):
    monkeypatch.delenv("SUDO_USER", raising=False)
    ok(site, "user", "add", "ann@example.com", "--no-email", env={"USER": "alice"})
    actors = query(site, "SELECT DISTINCT actor FROM audit WHERE subject = 'ann@example.com'")
    assert actors == [("alice",)]


def test_audit_actor_prefers_sudo_user(site, monkeypatch):
    ok(site, "user", "add", "bob@example.com", "--no-email", env={"USER": "root", "SUDO_USER": "bob"})
    actors = query(site, "SELECT DISTINCT actor FROM audit WHERE subject = 'bob@example.com'")
    assert actors == [("bob",)]


# === 7. import ============================================================================

def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def run_in_pty(args: list[str], timeout: float = 120) -> tuple[int, str]:
    """Runs ARGS with stdin/stdout/stderr on a pseudo-terminal; (exit code, everything shown)."""
    master, slave = os.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="100")
    env.pop("LATCHKEY_CONFIG", None)
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"{args} did not finish within {timeout}s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # drain whatever is left
                try:
                    while select.select([master], [], [], 0.1)[0]:
                        data = os.read(master, 65536)
                        if not data:
                            break
                        chunks.append(data)
                except OSError:
                    pass
                break
    finally:
        os.close(master)
    return proc.wait(timeout=10), b"".join(chunks).decode("utf-8", errors="replace")


def table_rows(site: Site) -> tuple:
    return (query(site, "SELECT * FROM person ORDER BY id"),
            query(site, "SELECT * FROM access_grant ORDER BY person_id, offer_id"))


def test_import_10000_rows_shows_progress_bar_on_terminal_and_reimport_changes_nothing(site):
    rows = [["email", "name"]] + [[f"member{i:05d}@example.com", f"Member {i}"] for i in range(10000)]
    path = write_csv(site.top / "members.csv", rows)

    code, shown = run_in_pty([latchkey_bin(), "import", "csv", str(path), "--offer", "gold",
                              "--config", str(site.config)])
    site.chown_var()
    assert code == 0, shown[-2000:]
    assert "10000/10000" in shown, shown[-2000:]
    assert re.search(r"\[[#=\-.> ]+\]", shown), shown[-2000:]
    assert "Imported 10000 rows: 10000 created, 0 updated, 0 unchanged, 0 skipped" in shown, shown[-2000:]
    assert query(site, "SELECT count(*) FROM person WHERE kind = 'customer'") == [(10000,)]
    assert query(site, "SELECT count(*) FROM access_grant WHERE revoked_at IS NULL") == [(10000,)]
    assert show_json(site, "member04242@example.com")["name"] == "Member 4242"

    before = table_rows(site)
    again = ok(site, "import", "csv", path, "--offer", "gold")
    assert again.stdout.strip() == "Imported 10000 rows: 0 created, 0 updated, 10000 unchanged, 0 skipped"
    assert "10000/10000" not in again.stdout + again.stderr, "no progress bar when not on a terminal"
    assert table_rows(site) == before


BAD_ROWS_CSV = (
    "email,name,phone\n"          # 1
    "x1@example.com,X One,123\n"  # 2
    "not-an-email,Bad,1\n"        # 3
    "\n"                          # 4 (blank)
    "x2@example.com,X Two,5\n"    # 5
    ",No Email,3\n"               # 6
    "X3@Example.com,\"Three, Q\",7\n"  # 7
)


def test_import_reports_bad_rows_by_line_number_and_ignored_columns(site):
    path = site.top / "bad.csv"
    path.write_text(BAD_ROWS_CSV, encoding="utf-8")
    result = ok(site, "import", "csv", path)
    assert result.stdout.strip() == "Imported 5 rows: 3 created, 0 updated, 0 unchanged, 2 skipped"
    err = result.stderr.splitlines()
    assert "warning: ignoring columns: phone" in err, err
    reported = [line for line in err if line.startswith("line ")]
    assert [line.split(":")[0] for line in reported] == ["line 3", "line 6"], err
    assert all(line.endswith("skipped") for line in reported), err
    assert show_json(site, "x3@example.com")["name"] == "Three, Q"

    before = table_rows(site)
    again = ok(site, "import", "csv", path)
    assert again.stdout.strip() == "Imported 5 rows: 0 created, 0 updated, 3 unchanged, 2 skipped"
    assert table_rows(site) == before

    path.write_text(BAD_ROWS_CSV.replace("X Two", "X Two Renamed"), encoding="utf-8")
    renamed = ok(site, "import", "csv", path)
    assert renamed.stdout.strip() == "Imported 5 rows: 0 created, 1 updated, 2 unchanged, 2 skipped"
    assert show_json(site, "x2@example.com")["name"] == "X Two Renamed"


def test_import_counts_line_numbers_across_quoted_multiline_fields(site):
    path = site.top / "multiline.csv"
    path.write_text('email,name\n'                       # 1
                    '"a@example.com","Note\nspanning"\n'   # 2-3
                    'b@example.com,B\n'                  # 4
                    'broken,Row\n',                      # 5
                    encoding="utf-8")
    result = ok(site, "import", "csv", path)
    reported = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("line ")]
    assert "line 5" in reported, result.stderr
    assert "line 4" not in reported, result.stderr


def test_import_reports_each_bad_row_on_one_line(site):
    """A row that swallows a newline (an unterminated quote) is still one `line N: … skipped`
    line on stderr: no raw input newline splits the report."""
    path = site.top / "unterminated.csv"
    path.write_text('email,name\nok@example.com,Ok\n"q@example.com,Q\n', encoding="utf-8")
    result = ok(site, "import", "csv", path)
    err = result.stderr.splitlines()
    assert all(line.startswith(("line ", "warning: ")) for line in err), err
    assert any(line.startswith("line 3:") and line.endswith("skipped") for line in err), err


def test_import_dry_run_writes_nothing(site):
    path = site.top / "bad.csv"
    path.write_text(BAD_ROWS_CSV, encoding="utf-8")
    before = db_dump(site)
    result = ok(site, "import", "csv", path, "--offer", "gold", "--dry-run")
    assert result.stdout.startswith("Dry run, nothing written: "), result.stdout
    assert "3 created, 0 updated, 0 unchanged, 2 skipped" in result.stdout
    assert db_dump(site) == before
    assert_one_line_error(lk(site, "user", "show", "x1@example.com"))


def test_import_without_email_column_is_refused(site):
    path = site.top / "noemail.csv"
    path.write_text("name,phone\nAnn,1\n", encoding="utf-8")
    before = db_dump(site)
    assert_one_line_error(lk(site, "import", "csv", path))
    assert db_dump(site) == before


# === 8. --help, unknown options ===========================================================

COMMANDS = [
    # (command words, arguments that make the call otherwise valid)
    (["init"], ["{top}/never-made"]),
    (["build"], []),
    (["user", "add"], ["x@example.com"]),
    (["contact", "add"], ["x@example.com"]),
    (["user", "reset"], ["x@example.com"]),
    (["user", "set-password"], ["x@example.com"]),
    (["user", "show"], ["x@example.com"]),
    (["user", "find"], ["x"]),
    (["user", "set-email"], ["x@example.com", "y@example.com"]),
    (["user", "disable"], ["x@example.com"]),
    (["user", "enable"], ["x@example.com"]),
    (["user", "delete"], ["x@example.com", "--yes"]),
    (["welcome", "resend"], ["x@example.com"]),
    (["import", "csv"], ["{top}/people.csv"]),
    (["offer", "add"], ["slug", "--name", "N"]),
    (["offer", "list"], []),
    (["access", "grant"], ["x@example.com", "gold"]),
    (["access", "revoke"], ["x@example.com", "gold"]),
    (["mail", "log"], []),
    (["mail", "retry"], ["1"]),
    (["mail", "deliver"], []),
    (["webserver", "apache"], []),
]


@pytest.fixture(scope="module")
def plain_site():
    site = Site.create({}, build=False)
    run_latchkey("offer", "add", "gold", "--name", "Gold", config=site.config)
    (site.top / "people.csv").write_text("email,name\nx@example.com,X\n", encoding="utf-8")
    yield site
    site.remove()


@pytest.mark.parametrize("words,args", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_help_exits_zero_with_usage_line(words, args, plain_site):
    result = run_latchkey(*words, "--help")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("usage: latchkey " + " ".join(words)), first


@pytest.mark.parametrize("words,args", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_rejects_unknown_option_with_one_error_line(words, args, plain_site):
    args = [a.format(top=plain_site.top) for a in args]
    before = db_dump(plain_site)
    result = run_latchkey(*words, *args, "--bogus-option", config=plain_site.config)
    plain_site.chown_var()
    assert_one_line_error(result)
    assert "--bogus-option" in result.stderr
    assert db_dump(plain_site) == before
    assert not (plain_site.top / "never-made").exists()


def test_unknown_command_is_one_error_line():
    assert_one_line_error(run_latchkey("frobnicate"))
    assert_one_line_error(run_latchkey("user", "frobnicate"))


def test_top_level_unknown_option_is_one_error_line():
    assert_one_line_error(run_latchkey("--bogus-option"))


def test_top_level_help_lists_admin_commands():
    result = run_latchkey("--help")
    assert result.returncode == 0
    for words, _ in COMMANDS:
        assert "latchkey " + " ".join(words) in result.stdout, words
