"""Mail through a real MTA client: the `sendmail:` transport running msmtp, relaying to a local
SMTP server (aiosmtpd, see smtpsink.py) on 127.0.0.1.

Latchkey runs `PROGRAM -t -i` with the message on stdin; msmtp reads its config from a file,
so the transport points at a small wrapper script, `exec /usr/bin/msmtp --file=RC "$@"`. The rc
file turns off msmtp's own From/Date/Message-ID headers, so every header checked here is one
Latchkey wrote. The admin tool runs msmtp as root; the web flow (Apache) as www-data: wrapper
and rc file sit in a 0755 folder, readable by both.

Needs: msmtp, and python3-aiosmtpd for /usr/bin/python3 (the SMTP server runs as a subprocess
of that interpreter).
"""
from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import time
from email.utils import parsedate_to_datetime

import pytest

from lkserver import served_tempdir
from smtpsink import SYSTEM_PYTHON, SmtpSink

CUSTOMER = "ann.customer@example.com"
PASSWORD = "old password 1"
NEW_PASSWORD = "brand new password 2"
TOKEN_RE = r"[A-Za-z0-9_-]{43}"

pytestmark = pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp is not installed")


def _have_aiosmtpd() -> bool:
    import subprocess
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", "import aiosmtpd"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


@pytest.fixture
def relay():
    """A folder with the msmtp wrapper and rc file, and a running SMTP server; stopped at teardown.

    `relay.transport` is the `mail.transport` value; `relay.point_at(port)` rewrites the rc file."""
    if not _have_aiosmtpd():
        pytest.fail(f"aiosmtpd is missing for {SYSTEM_PYTHON}: apt-get install python3-aiosmtpd")
    top = served_tempdir("latchkey-msmtp-")
    sink = SmtpSink(top / "received")

    class Relay:
        folder = top
        rc = top / "msmtprc"
        wrapper = top / "sendmail"
        transport = f"sendmail:{top / 'sendmail'}"
        log = top / "msmtp.log"

        def point_at(self, port: int) -> None:
            self.rc.write_text("\n".join([
                "account default", "host 127.0.0.1", f"port {port}", "from no-reply@example.com",
                "auth off", "tls off", "timeout 10",
                "set_from_header off", "set_date_header off", "set_msgid_header off", ""]))
            self.rc.chmod(0o644)

    r = Relay()
    r.wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/msmtp --file={r.rc} "$@"\n')
    r.wrapper.chmod(0o755)
    sink.start()
    r.sink = sink
    r.point_at(sink.port)
    try:
        yield r
    finally:
        sink.stop()
        shutil.rmtree(top, ignore_errors=True)


# --- helpers ---------------------------------------------------------------------------------
def admin(site, *args, input=None, expect=0):
    result = site.latchkey(*args, input=input)
    site.chown_var()
    if expect is not None:
        assert result.returncode == expect, (f"latchkey {' '.join(map(str, args))} exited {result.returncode}:\n"
                                             f"{result.stdout}{result.stderr}")
    return result


def add_customer(site, address=CUSTOMER, name="Ann Customer", password=PASSWORD):
    admin(site, "offer", "add", "members", "--name", "Members")
    admin(site, "user", "add", address, "--name", name, "--no-email", "--offer", "members")
    if password:
        admin(site, "user", "set-password", address, input=password + "\n")


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


def body(msg, content_type) -> str:
    found = [p for p in leaves(msg) if p.get_content_type() == content_type]
    assert len(found) == 1, [p.get_content_type() for p in leaves(msg)]
    return found[0].get_content()


def tokens(text: str, base_url: str) -> set[str]:
    return set(re.findall(re.escape(base_url) + r"/cgi-bin/reset\?token=(" + TOKEN_RE + ")", text))


def mail_log(site, address=None) -> list[dict]:
    result = admin(site, "mail", "log", *([address] if address else []), "--json")
    return json.loads(result.stdout)


def headers_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]


# --- tests ----------------------------------------------------------------------------------
def test_admin_reset_goes_through_msmtp_as_a_proper_mime_message(make_site, relay):
    site = make_site(mail={"transport": relay.transport}, base_url="https://learn.example.com")
    add_customer(site)

    result = admin(site, "user", "reset", CUSTOMER)
    assert "Reset password email sent." in result.stdout, result.stdout
    printed = re.findall(r"token=(" + TOKEN_RE + ")", result.stdout)
    assert len(printed) == 1, result.stdout

    raw = relay.sink.wait_for(1)[0]
    envelope = relay.sink.envelopes()[0]
    assert envelope["rcpt_tos"] == [CUSTOMER], envelope
    assert envelope["mail_from"] == "no-reply@example.com", envelope

    msg = parse(raw)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted",
                   "Content-Language"):
        assert len(msg.get_all(header) or []) == 1, f"{header}: {msg.get_all(header)}\n{headers_of(raw)!r}"
    assert msg["From"].addresses[0].addr_spec == "no-reply@example.com"
    assert msg["From"].addresses[0].display_name == "Acme Academy"
    assert [a.addr_spec for a in msg["To"].addresses] == [CUSTOMER]
    assert msg["To"].addresses[0].display_name == "Ann Customer"
    assert str(msg["Subject"]) == "Reset your password"
    assert abs(parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 300, msg["Date"]
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msg["Message-ID"].strip()), msg["Message-ID"]
    assert msg["MIME-Version"].strip() == "1.0"
    assert msg["Auto-Submitted"].strip().lower() == "auto-generated"
    assert msg["Content-Language"].strip() == "en"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in leaves(msg)] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in leaves(msg))
    text, html = body(msg, "text/plain"), body(msg, "text/html")
    assert tokens(text, "https://learn.example.com") == set(printed), text
    assert tokens(html, "https://learn.example.com") == set(printed), html
    assert "<html" in html.lower() and "lang=\"en\"" in html
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "a line longer than RFC 5322 allows"
    assert max(raw) < 0x80 or b"Content-Transfer-Encoding: 8bit" in raw, "8-bit data without 8bit encoding"
    assert headers_of(raw).isascii(), f"raw headers must be ASCII (RFC 2047 for the rest): {headers_of(raw)!r}"

    log = mail_log(site, CUSTOMER)
    assert [(m["status"], m["kind"]) for m in log] == [("sent", "reset")], log


def test_non_ascii_name_is_encoded_and_header_injection_adds_no_recipient(make_site, relay):
    """msmtp -t takes recipients from the headers: a CRLF smuggled into a name must not become a
    Bcc (or any other header), and a non-ASCII name must arrive intact (RFC 2047)."""
    site = make_site(mail={"transport": relay.transport})
    admin(site, "offer", "add", "members", "--name", "Members")
    zoe, eve = "zoe@example.com", "eve@example.com"
    admin(site, "user", "add", zoe, "--name", "Zoë Ünïcodé", "--no-email", "--offer", "members")
    added = site.latchkey("user", "add", eve, "--name", "Eve\r\nBcc: victim@evil.example", "--no-email",
                          "--offer", "members")
    site.chown_var()

    admin(site, "user", "reset", zoe)
    expected = 1
    if added.returncode == 0:  # refusing such a name (when adding or when mailing) is fine too
        sent = admin(site, "user", "reset", eve, expect=None)
        if sent.returncode == 0:
            expected = 2
        else:
            assert "control character" in sent.stderr or "header" in sent.stderr, sent.stderr
    raws = relay.sink.wait_for(expected)
    time.sleep(0.3)
    envelopes = relay.sink.envelopes()
    assert sorted(r for e in envelopes for r in e["rcpt_tos"]) == sorted([zoe, eve][:expected]), envelopes

    first = parse(raws[0])
    assert first["To"].addresses[0].display_name == "Zoë Ünïcodé", str(first["To"])
    assert headers_of(raws[0]).isascii(), headers_of(raws[0])
    for raw in raws:
        assert b"\nBcc:" not in headers_of(raw) and b"victim@evil.example" not in raw.split(b"\n\n")[0].replace(
            b"\r", b""), headers_of(raw)


def test_web_forgot_in_french_sends_french_mail_through_msmtp(make_site, apache, relay):
    site = make_site(_build=False, mail={"transport": relay.transport},
                     throttle={"forgot_per_ip": {"count": 1000, "window": "1h"}})
    server = apache(site)
    add_customer(site)

    asked = server.post("/cgi-bin/forgot", {"email": CUSTOMER, "locale": "fr"})
    assert asked.status == 303, (asked.status, asked.text, server.error_log())
    assert asked.headers["location"] == server.url + "/fr/forgot-sent.html"

    raw = relay.sink.wait_for(1)[0]
    msg = parse(raw)
    assert str(msg["Subject"]) == "Réinitialisez votre mot de passe", str(msg["Subject"])
    assert msg["Content-Language"].strip() == "fr"
    assert 'lang="fr"' in body(msg, "text/html")
    assert headers_of(raw).isascii(), headers_of(raw)
    found = tokens(body(msg, "text/plain"), server.url)
    assert len(found) == 1 and found == tokens(body(msg, "text/html"), server.url)
    token = found.pop()

    # The link works, and the change notice goes out in French through msmtp too.
    shown = server.get(f"/cgi-bin/reset?token={token}")
    assert shown.status == 303 and shown.headers["location"] in (server.url + "/fr/reset.html",
                                                                 server.url + "/reset.html"), shown.headers
    done = server.post("/cgi-bin/reset", {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                          "locale": "fr"}, headers={"Cookie": f"lk_reset={token}"})
    assert done.status == 303 and done.headers["location"] == server.url + "/fr/reset-done.html", done.headers
    notice = parse(relay.sink.wait_for(2)[1])
    assert str(notice["Subject"]) == "Votre mot de passe a été modifié"
    assert [a.addr_spec for a in notice["To"].addresses] == [CUSTOMER]
    assert token not in notice.as_string()
    assert [m["status"] for m in mail_log(site, CUSTOMER)] == ["sent", "sent"]

    # The link in a French mail should open the French reset form, not the default language's.
    assert shown.headers["location"] == server.url + "/fr/reset.html", \
        f"the link from a French mail opened {shown.headers['location']}"


def test_failed_delivery_is_recorded_and_retried_once_the_relay_is_back(make_site, relay):
    site = make_site(mail={"transport": relay.transport})
    add_customer(site)
    relay.point_at(1)  # nothing listens on port 1

    result = site.latchkey("user", "reset", CUSTOMER)
    site.chown_var()
    log = mail_log(site, CUSTOMER)
    assert len(log) == 1 and log[0]["status"] == "failed", (result.stdout, result.stderr, log)
    assert log[0]["last_error"], log
    assert "msmtp" in log[0]["last_error"] or "sendmail" in log[0]["last_error"] or "status" in log[0]["last_error"]
    assert relay.sink.messages() == []

    relay.point_at(relay.sink.port)
    admin(site, "mail", "retry", log[0]["id"])
    raw = relay.sink.wait_for(1)[0]
    assert str(parse(raw)["Subject"]) == "Reset your password"
    log = mail_log(site, CUSTOMER)
    assert len(log) == 1 and log[0]["status"] == "sent" and log[0]["attempts"] >= 2, log
