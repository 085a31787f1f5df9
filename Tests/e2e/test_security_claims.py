"""SPEC §8, the security floor: one test per claim, each through a real Apache.

Timing parts of "no enumeration" live in the benchmarks; here the answers themselves are compared.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time


import maildir as mail
from lkserver import HttpsApacheServer, add_customer as shared_add_customer, admin_ok, site_dump, site_sql, wait_site_idle, verifies

CUSTOMER = "ann.customer@example.com"
OTHER = "bob.other@example.com"
UNKNOWN = "nobody.here@example.com"
PASSWORD = "old-password-1"
OTHER_PASSWORD = "bobs-password-9"
NEW_PASSWORD = "brand new pass phrase 2"
OFFER = "gold"
EVIL = "http://evil.example"
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_-]{43})")
NOT_COMPARED = {"date", "transfer-encoding", "content-length"}


# --- helpers ------------------------------------------------------------------------------------------
admin = admin_ok


def add_customer(site, address=CUSTOMER, password=PASSWORD):
    shared_add_customer(site, address, password, OFFER)


def served(make_site, apache, customers=((CUSTOMER, PASSWORD),), **overrides):
    site = make_site(_build=False, **overrides)
    server = apache(site)
    for address, password in customers:
        add_customer(site, address, password)
    return site, server


def issue_token(site, address=CUSTOMER) -> str:
    return TOKEN_RE.search(admin(site, "user", "reset", address).stdout).group(1)


def stored_hash(site, address=CUSTOMER) -> str:
    return site_sql(site, f"SELECT password_hash FROM person WHERE email = '{address}'")[0]["password_hash"]


def login(server, address=CUSTOMER, password=PASSWORD, headers=None):
    return server.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"}, headers=headers)


def forgot(server, address, headers=None):
    return server.post("/cgi-bin/forgot", {"email": address, "locale": "en"}, headers=headers)


def reset(server, token, password, confirm=None, headers=None):
    return server.post("/cgi-bin/reset", {"new_password": password, "confirm_password": confirm or password,
                                          "locale": "en"},
                       headers={"Cookie": f"lk_reset={token}", **(headers or {})})


def set_cookies(answer) -> dict[str, str]:
    return {h.split("=", 1)[0].strip(): h for h in answer.all("set-cookie")}


def cookie_attrs(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def session_value(answer, name="lk_session") -> str | None:
    header = set_cookies(answer).get(name)
    return header.split(";", 1)[0].split("=", 1)[1] if header else None


def page(server, name) -> str:
    return f"{server.url}/{name}.html"


def comparable(answer):
    return answer.status, [(k.lower(), v) for k, v in answer.header_list if k.lower() not in NOT_COMPARED], answer.body


def db_hash(site) -> str:
    return hashlib.sha256(site_dump(site)).hexdigest()


def audit(site, action):
    return site_sql(site, f"SELECT id, at, actor, action, person_id, subject, remote_addr, detail FROM audit "
                          f"WHERE action = '{action}' ORDER BY id")


# =========================================================================================================
def test_passwords_are_argon2id_at_owasp_defaults_and_rehashed_on_login_when_cost_rises(make_site, apache):
    site, server = served(make_site, apache)
    token = issue_token(site)
    done = reset(server, token, NEW_PASSWORD)
    assert done.headers.get("location") == page(server, "reset-done"), done
    first = stored_hash(site)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), f"web-set hash at defaults: {first[:40]}"
    assert verifies(first, NEW_PASSWORD)

    site.update_config(password={"argon2_memory_mib": 32})
    assert login(server, password=NEW_PASSWORD).headers.get("location") == f"{server.url}/members/"
    upgraded = stored_hash(site)
    assert upgraded.startswith("$argon2id$v=19$m=32768,t=2,p=1$"), f"after raising the cost: {upgraded[:40]}"
    assert verifies(upgraded, NEW_PASSWORD) and upgraded != first
    assert any("upgraded" in row["detail"] for row in audit(site, "login.ok")), audit(site, "login.ok")
    # Unchanged parameters: a later login leaves the hash alone.
    assert login(server, password=NEW_PASSWORD).status == 303
    assert stored_hash(site) == upgraded


def test_password_must_be_8_to_128_characters_and_not_the_email(make_site, apache):
    site, server = served(make_site, apache)
    token = issue_token(site)
    before = stored_hash(site)
    for password, variant in [("seven77", "too-short"), ("x" * 129, "too-long"),
                              (CUSTOMER, "same-as-email"), (CUSTOMER.upper(), "same-as-email")]:
        answer = reset(server, token, password)
        assert answer.status == 303 and answer.headers["location"] == page(server, f"reset.{variant}"), \
            (len(password), answer.headers.get("location"))
        assert stored_hash(site) == before, f"{variant}: the password changed"
    # The bounds themselves are allowed: 128 characters here, 8 in the next test.
    longest = "y" * 128
    done = reset(server, token, longest)
    assert done.headers.get("location") == page(server, "reset-done"), done.headers
    assert verifies(stored_hash(site), longest)


def test_no_composition_rules_an_all_lowercase_eight_letter_password_is_accepted(make_site, apache):
    """No digits, capitals or symbols are demanded; only common passwords are refused (test_blocklist.py)."""
    site, server = served(make_site, apache)
    token = issue_token(site)
    done = reset(server, token, "mzqtrvlk")
    assert done.status == 303 and done.headers["location"] == page(server, "reset-done"), done.headers
    assert verifies(stored_hash(site), "mzqtrvlk")
    assert login(server, password="mzqtrvlk").headers.get("location") == f"{server.url}/members/"


def test_forgot_and_login_answer_the_same_for_known_and_unknown_addresses(make_site, apache):
    site, server = served(make_site, apache, throttle={"forgot_per_ip": {"count": 1000, "window": "1h"}})
    known, unknown = forgot(server, CUSTOMER), forgot(server, UNKNOWN)
    assert known.headers["location"] == page(server, "forgot-sent")
    assert comparable(known) == comparable(unknown), "forgot tells known from unknown addresses"
    wrong, nobody = login(server, CUSTOMER, "wrong password 1"), login(server, UNKNOWN, "wrong password 1")
    assert wrong.headers["location"] == page(server, "login.invalid-login")
    assert comparable(wrong) == comparable(nobody), "login tells known from unknown addresses"
    wait_site_idle(site)


def test_forgot_is_throttled_per_address_and_per_client_ip(make_site, apache):
    site, server = served(make_site, apache, customers=((CUSTOMER, PASSWORD), (OTHER, OTHER_PASSWORD),
                                                        ("carl@example.com", "carls-password-3")),
                          throttle={"forgot_per_address": {"count": 2, "window": "1h"},
                                    "forgot_per_ip": {"count": 4, "window": "1h"}})
    answers = []
    for address in (CUSTOMER, CUSTOMER, CUSTOMER, OTHER, "carl@example.com"):
        answers.append(forgot(server, address))
        wait_site_idle(site)  # each worker counts before the next request
    assert all(comparable(a) == comparable(answers[0]) for a in answers), "a throttled request must look the same"
    sent = [row["recipient"] for row in site_sql(site, "SELECT recipient FROM mail ORDER BY id")]
    assert sent == [CUSTOMER, CUSTOMER, OTHER], f"mail went to {sent}"
    reasons = [row["detail"] for row in audit(site, "reset.refused")]
    assert reasons == ["throttled (address)", "throttled (client IP)"], reasons


def test_login_is_throttled_per_account_and_per_client_ip(make_site, apache):
    site, server = served(make_site, apache, customers=((CUSTOMER, PASSWORD), (OTHER, OTHER_PASSWORD)),
                          throttle={"login_failures_per_account": {"count": 3, "window": "1h"},
                                    "login_failures_per_ip": {"count": 6, "window": "1h"}})
    failed = [login(server, CUSTOMER, f"wrong guess {i}") for i in range(3)]
    locked = login(server, CUSTOMER, PASSWORD)
    assert comparable(locked) == comparable(failed[0]), "the right password must be refused once the account is locked"
    assert session_value(locked) is None
    ok = login(server, OTHER, OTHER_PASSWORD)
    assert ok.headers.get("location") == f"{server.url}/members/", "another account is not locked by the first"
    for i in range(2):
        login(server, OTHER, f"wrong guess {i}")
    by_ip = login(server, OTHER, OTHER_PASSWORD)
    assert comparable(by_ip) == comparable(failed[0]), "six failures from one IP must lock every account from it"
    assert [r["detail"] for r in audit(site, "login.failed")].count("throttled") == 2


def test_cross_site_posts_are_refused_and_change_nothing(make_site, apache):
    site, server = served(make_site, apache)
    token = issue_token(site)
    session = session_value(login(server))
    wait_site_idle(site)
    before = db_hash(site)
    cookie = f"lk_session={session}; lk_reset={token}"
    forms = {
        "login": {"email": CUSTOMER, "password": PASSWORD, "locale": "en"},
        "logout": {"locale": "en"},
        "forgot": {"email": CUSTOMER, "locale": "en"},
        "reset": {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "locale": "en"},
        "account": {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                    "locale": "en"},
    }
    for endpoint, form in forms.items():
        for hostile in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}):
            answer = server.post(f"/cgi-bin/{endpoint}", form, headers={"Cookie": cookie, **hostile})
            assert answer.status == 403, (endpoint, hostile, answer.status, answer.headers.get("location"))
            assert b"403" in answer.body
    wait_site_idle(site)
    assert db_hash(site) == before, "a refused cross-site POST changed the database"
    assert mail.Mailbox(site.var / "mail").count() == 1  # only the admin's reset email
    # The control: the same POST from the site itself goes through.
    same = login(server, headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert same.headers.get("location") == f"{server.url}/members/"


def test_session_cookie_is_random_stored_hashed_httponly_lax_with_idle_timeout_and_host_prefix_under_https(
        make_site, apache):
    site, server = served(make_site, apache, session={"idle_timeout": "2s", "absolute_timeout": "1h"})
    first, second = login(server), login(server)
    header = set_cookies(first)["lk_session"]
    attrs = cookie_attrs(header)
    assert "httponly" in attrs and attrs.get("samesite") == "Lax" and attrs.get("path") == "/", header
    assert "domain" not in attrs and "secure" not in attrs, header
    assert attrs.get("max-age") == "3600", f"the cookie should live for the absolute timeout: {header}"
    values = [session_value(first), session_value(second)]
    assert values[0] != values[1]
    for value in values:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value) and len(base64.urlsafe_b64decode(value + "=")) == 32
    dump = site_dump(site)
    for value in values:
        raw = base64.urlsafe_b64decode(value + "=")
        assert value.encode() not in dump and raw.hex().encode() not in dump.lower(), "a session id is stored in clear"
    assert server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={values[1]}"}).status == 204
    last_seen = site_sql(site, "SELECT max(last_seen_at) AS t FROM session")[0]["t"]
    time.sleep(max(0.0, last_seen + 3.05 - time.time()))
    assert server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={values[1]}"}).status == 401, \
        "a session unused past session.idle_timeout must end"

    https = HttpsApacheServer(site)
    try:
        https.start()
        secure = login(https)
        cookies = set_cookies(secure)
        assert "__Host-lk_session" in cookies and "lk_session" not in cookies, list(cookies)
        attrs = cookie_attrs(cookies["__Host-lk_session"])
        assert "secure" in attrs and "httponly" in attrs and attrs.get("samesite") == "Lax", attrs
        assert attrs.get("path") == "/" and "domain" not in attrs, attrs
    finally:
        https.cleanup()


def test_bad_input_gets_a_4xx_page_and_changes_nothing(make_site, apache):
    site, server = served(make_site, apache)
    wait_site_idle(site)
    before = db_hash(site)
    answer = server.post("/cgi-bin/login", f"email={CUSTOMER}%C3%28&password={PASSWORD}&locale=en",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 400 and b"400" in answer.body, answer.status
    assert answer.headers.get("content-type", "").startswith("text/html")
    assert session_value(answer) is None
    wait_site_idle(site)
    assert db_hash(site) == before


def test_links_in_mail_come_from_base_url_never_from_host_or_forwarded_headers(make_site, apache):
    site, server = served(make_site, apache)
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
              "X-Forwarded-Server": "evil.example", "Forwarded": "host=evil.example;proto=https"}
    answer = forgot(server, CUSTOMER, headers=forged)
    assert answer.headers.get("location") == page(server, "forgot-sent"), answer.headers
    box = mail.Mailbox(site.var / "mail")
    message = box.wait_for(1)[0]
    token = mail.reset_token(message, server.url)  # text and HTML both link to base_url
    assert b"evil.example" not in box.raw()[0], "a forged header reached the email"
    visit = server.get(f"/cgi-bin/reset?token={token}", headers=forged)
    assert visit.headers.get("location") == page(server, "reset"), visit.headers
    done = reset(server, token, NEW_PASSWORD, headers=forged)
    assert done.headers.get("location") == page(server, "reset-done")
    notice = box.wait_for(2)[1]
    assert b"evil.example" not in box.raw()[1] and str(notice["To"]).endswith(CUSTOMER)


def test_a_reset_never_logs_the_person_in(make_site, apache):
    site, server = served(make_site, apache)
    token = issue_token(site)
    visit = server.get(f"/cgi-bin/reset?token={token}")
    done = reset(server, token, NEW_PASSWORD)
    assert done.headers.get("location") == page(server, "reset-done")
    for answer in (visit, done):
        names = [h.split("=", 1)[0].strip() for h in answer.all("set-cookie")]
        assert not any("session" in name for name in names), f"a reset set a session cookie: {answer.all('set-cookie')}"
    jar = "; ".join(h.split(";", 1)[0] for h in visit.all("set-cookie") + done.all("set-cookie"))
    assert server.get("/cgi-bin/session", headers={"Cookie": jar}).status == 401
    members = server.get("/members/", headers={"Cookie": jar})
    assert members.status == 303 and "/login" in members.headers.get("location", ""), members.headers
    wait_site_idle(site)
    assert site_sql(site, "SELECT count(*) AS n FROM session")[0]["n"] == 0, "a reset created a session"
    assert login(server, password=NEW_PASSWORD).headers.get("location") == f"{server.url}/members/"


def test_every_cgi_answer_sends_cache_control_no_store_and_referrer_policy_no_referrer(make_site, apache):
    site, server = served(make_site, apache)
    token = issue_token(site)
    session = session_value(login(server))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = {
        "login ok": login(server),
        "login failed": login(server, password="wrong password 9"),
        "forgot": forgot(server, CUSTOMER),
        "reset GET valid": server.get(f"/cgi-bin/reset?token={token}"),
        "reset GET unknown": server.get("/cgi-bin/reset?token=" + "A" * 43),
        "reset POST too short": reset(server, token, "short"),
        "reset POST done": reset(server, token, NEW_PASSWORD),
        "account no session": server.post("/cgi-bin/account", {"current_password": "x", "locale": "en"}),
        "session 204": server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={session}"}),
        "session 401": server.get("/cgi-bin/session"),
        "logout": server.post("/cgi-bin/logout", {"locale": "en"}),
        "members gate": server.get("/members/"),
        "400": server.post("/cgi-bin/login", "email=%zz", headers=form),
        "403": server.post("/cgi-bin/forgot", {"email": CUSTOMER}, headers={"Origin": EVIL}),
        "405": server.get("/cgi-bin/login"),
        "413": server.post("/cgi-bin/forgot", "email=" + "x" * 9000, headers=form),
        "415": server.post("/cgi-bin/forgot", "email=a", headers={"Content-Type": "text/plain"}),
    }
    problems = []
    for what, answer in answers.items():
        if "no-store" not in answer.headers.get("cache-control", ""):
            problems.append(f"{what} ({answer.status}): Cache-Control {answer.headers.get('cache-control')!r}")
        if answer.headers.get("referrer-policy") != "no-referrer":
            problems.append(f"{what} ({answer.status}): Referrer-Policy {answer.headers.get('referrer-policy')!r}")
    wait_site_idle(site)
    assert not problems, "\n".join(problems)


def test_audit_trail_records_who_what_when_and_from_where(make_site, apache):
    site, server = served(make_site, apache)
    wait_site_idle(site)
    seen = site_sql(site, "SELECT coalesce(max(id), 0) AS id FROM audit")[0]["id"]  # the setup's entries
    start = int(time.time()) - 1
    assert login(server).status == 303
    login(server, password="wrong password 8")
    token = issue_token(site)
    assert reset(server, token, NEW_PASSWORD).headers.get("location") == page(server, "reset-done")
    admin(site, "user", "set-password", CUSTOMER, input="admin chosen pw 7\n",
          env={"SUDO_USER": "support-sam", "USER": "root"})
    wait_site_idle(site)
    end = int(time.time()) + 1
    pid = site_sql(site, f"SELECT id FROM person WHERE email = '{CUSTOMER}'")[0]["id"]

    expected = {"login.ok": ("web", "127.0.0.1"), "login.failed": ("web", "127.0.0.1"),
                "password.reset": ("web", "127.0.0.1"), "password.set": ("support-sam", "")}
    for action, (actor, where) in expected.items():
        rows = [r for r in audit(site, action) if r["id"] > seen]
        assert len(rows) == 1, f"{action}: {rows}"
        row = rows[0]
        assert row["actor"] == actor, f"{action}: who = {row['actor']!r}, expected {actor!r}"
        assert row["subject"] == CUSTOMER and row["person_id"] == pid, f"{action}: {row}"
        assert row["remote_addr"] == where, f"{action}: from where = {row['remote_addr']!r}"
        assert start <= row["at"] <= end, f"{action}: when = {row['at']} outside [{start}, {end}]"
    assert audit(site, "login.failed")[-1]["detail"] == "wrong password"
