"""Passwords checked against a blocklist wherever one is set (SPEC §8, §10; NIST 800-63B
§5.1.1.2): common passwords, the site's name, the person's name and their email's local part
are refused through the reset page, the account page, the command line and the console, with
the same message everywhere; `"off"` turns it off and a file of one password a line replaces
the built-in list.
"""
from __future__ import annotations

import pytest

import maildir as mail
from console import enrol, location
from lkserver import admin_ok, site_sql
from servers import running

CONFIG = {"site_name": "Acme Academy",
          "throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"}, "login_failures_per_ip": {"count": 100000, "window": "1h"},
                       "login_failures_per_account": {"count": 100000, "window": "1h"}}}
OLD = "the first passphrase"
MESSAGE = "That password is too common or too easy to guess. Choose another one."
REFUSED = ["password123", "Qwertyuiop", "  iloveyou2 ", "AcmeAcademy2024!", "lovelace99", "ada.lovelace", "Lovelace"]
ACCEPTED = ["correct horse battery", "lovelace in paris"]
_serial = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", CONFIG, offer="gold") as srv:
        yield srv


def person(server) -> str:
    address = f"ada.lovelace+{next(_serial)}@example.com"
    admin_ok(server.site, "user", "add", address, "--name", "Ada Lovelace", "--offer", "gold", "--no-email")
    admin_ok(server.site, "user", "set-password", address, input=OLD + "\n")
    return address


def through_reset(server, address, password):
    admin_ok(server.site, "user", "reset", address)
    messages = [m for m in mail.Mailbox(server.site.var / "mail").messages() if mail.recipient(m) == address]
    token = mail.reset_token(messages[-1], server.url)
    return server.post("/cgi-bin/reset", {"new_password": password, "confirm_password": password, "locale": "en"},
                       headers={"Cookie": f"lk_reset={token}"})


def through_account(server, address, password):
    login = server.post("/cgi-bin/login", {"email": address, "password": OLD, "locale": "en"})
    cookie = [h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session=")][0]
    return server.post("/cgi-bin/account", {"current_password": OLD, "new_password": password, "confirm_password": password,
                                            "locale": "en"}, headers={"Cookie": cookie})


@pytest.mark.parametrize("password", REFUSED)
@pytest.mark.parametrize("where", ["reset", "account"])
def test_the_web_forms_refuse_a_common_or_guessable_password_with_one_message(server, where, password):
    address = person(server)
    def stored():
        return site_sql(server.site, f"SELECT password_hash, password_changed_at FROM person WHERE email = '{address}'")
    before = stored()
    resp = (through_reset if where == "reset" else through_account)(server, address, password)
    assert location(resp) == f"{server.url}/{where}.too-common.html", (resp.status, location(resp))
    assert stored() == before
    page = server.get(f"/{where}.too-common.html")
    assert page.status == 200 and MESSAGE in page.text.replace("&#39;", "'")


@pytest.mark.parametrize("password", ACCEPTED)
@pytest.mark.parametrize("where", ["reset", "account"])
def test_the_web_forms_accept_an_uncommon_password(server, where, password):
    resp = (through_reset if where == "reset" else through_account)(server, person(server), password)
    assert location(resp) == f"{server.url}/{where}-done.html", location(resp)


@pytest.mark.parametrize("password", REFUSED)
def test_the_command_line_and_the_console_refuse_them_too(server, password):
    address = person(server)
    result = server.site.latchkey("user", "set-password", address, input=password + "\n")
    assert result.returncode == 1
    assert result.stderr == "error: password rejected: too common or too easy to guess; choose another\n", result.stderr
    staff = enrol(server, f"staff{next(_serial)}@example.com", "manager")
    pid = site_sql(server.site, f"SELECT id FROM person WHERE email = '{address}'")[0]["id"]
    refused = staff.post(f"/people/{pid}/set-password", {"new_password": password, "confirm_password": password})
    assert location(refused).endswith(f"/people/{pid}/set-password?m=too_common")
    assert MESSAGE in staff.get(f"/people/{pid}/set-password?m=too_common").text.replace("&#39;", "'")


def test_off_allows_them_and_a_file_replaces_the_list(make_site):
    site = make_site(**CONFIG)
    admin_ok(site, "offer", "add", "gold", "--name", "Gold")
    admin_ok(site, "user", "add", "x@example.com", "--name", "Ada Lovelace", "--offer", "gold", "--no-email")
    site.update_config(password={"blocklist": "off"})
    admin_ok(site, "user", "set-password", "x@example.com", input="password123\n")
    custom = site.dir / "banned.txt"
    custom.write_text("Banana Split 77\n\nmy own secret\n")
    site.update_config(password={"blocklist": "banned.txt"})
    for banned in ("banana split 77", "MY OWN SECRET "):
        result = site.latchkey("user", "set-password", "x@example.com", input=banned + "\n")
        assert result.returncode == 1 and "too common" in result.stderr, result.stderr
    admin_ok(site, "user", "set-password", "x@example.com", input="password123\n")  # not on this list
    site.update_config(password={"blocklist": "missing.txt"})
    result = site.latchkey("user", "set-password", "x@example.com", input="anything long enough\n")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "blocklist" in result.stderr, result.stderr
