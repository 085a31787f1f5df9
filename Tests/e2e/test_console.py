"""The staff console over HTTP through a real Apache (SPEC §9): a support agent's day, and
the rules around it — roles checked per action on the server, CSRF and Origin, timeouts, codes
used once, throttling, step-up, allow_from, and bad input. Every refused action leaves the
database as it was.
"""
from __future__ import annotations

import contextlib
import re
import time

import pytest

import maildir as mail
from console import BASE, STAFF_PASSWORD, Staff, cookie_of, enrol, location
from lkserver import add_customer, admin_ok, deep_merge, site_dump, site_sql
from servers import running

CONFIG = {"throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"},
                       "login_failures_per_ip": {"count": 100000, "window": "1h"}},
          "admin": {"login_failures_per_ip": {"count": 100000, "window": "1h"}}}
CUSTOMER_PASSWORD = "customer passphrase 7"
_serial = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", CONFIG, offer="gold") as srv:
        yield srv


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}@example.com"


def customer(server, password: str | None = CUSTOMER_PASSWORD) -> tuple[str, int]:
    address = unique("cust")
    add_customer(server.site, address, password)
    return address, person_id(server, address)


def person_id(server, address: str) -> int:
    return site_sql(server.site, f"SELECT id FROM person WHERE email = '{address}'")[0]["id"]


def mails_to(server, address):
    return [m for m in mail.Mailbox(server.site.var / "mail").messages() if mail.recipient(m) == address]


def wait_for_mail(server, address, count=1):
    return mail.Mailbox(server.site.var / "mail").wait_for(count, to=address, timeout=10)


# --- the journey ---------------------------------------------------------------------------------
def test_a_support_agents_day(server):
    owner = enrol(server, unique("owner"), "owner")
    manager = enrol(server, unique("manager"), "manager")
    address, pid = customer(server)

    # Search finds them by any part of the address, in any case.
    found = manager.get("/people?q=" + address.split("@")[0][2:].upper())
    assert found.status == 200 and f'{BASE}/people/{pid}"' in found.text, found.text[:2000]

    # Reset Password → the confirmation step → Send email → the status message and the live link.
    confirm = manager.get(f"/people/{pid}/reset")
    assert confirm.status == 200 and "Send email" in confirm.text
    sent = manager.post(f"/people/{pid}/reset")
    assert sent.status == 303 and location(sent).endswith(f"/people/{pid}?m=reset_sent"), sent.text[:500]
    record = manager.get(f"/people/{pid}?m=reset_sent")
    assert "Reset password email sent." in record.text and "Reset password email sent</h2>" in record.text
    link = re.search(r'id="reset-link" type="text" readonly value="([^"]+)"', record.text).group(1).replace("&amp;", "&")
    reset_mail = wait_for_mail(server, address)[0]
    assert mail.reset_token(reset_mail, server.url) in link
    assert f"by staff:{manager.email}" in record.text
    assert site_sql(server.site, f"SELECT count(*) AS n FROM audit WHERE action = 'link.viewed' AND person_id = {pid}")[0]["n"] >= 1

    # Create a customer: the exact message, and the link.
    new_address = unique("new")
    created = manager.post("/people", {"email": new_address, "name": "New Person", "kind": "customer", "offer": "gold", "send_email": "yes"})
    assert created.status == 303, created.text[:500]
    new_record = manager.get(location(created)[len(server.url) + len(BASE):])
    assert "Account successfully created and reset password email sent." in new_record.text
    assert 'id="reset-link"' in new_record.text
    wait_for_mail(server, new_address)

    # A temporary password sends the customer to the account page at login.
    temp = manager.post(f"/people/{pid}/set-password", {"new_password": "temporary pass 9", "confirm_password": "temporary pass 9",
                                                         "temporary": "yes"})
    assert location(temp).endswith("m=temporary_set"), (temp.status, location(temp), temp.text[:300])
    login = server.post("/cgi-bin/login", {"email": address, "password": "temporary pass 9", "locale": "en"})
    assert location(login) == server.url + "/account.must-change.html"

    # Revoke and grant.
    revoked = manager.post(f"/people/{pid}/revoke", {"offer": "gold"})
    assert location(revoked).endswith("m=revoked")
    assert site_sql(server.site, f"SELECT revoked_at IS NOT NULL AS r FROM access_grant WHERE person_id = {pid}")[0]["r"] == 1
    granted = manager.post(f"/people/{pid}/grant", {"offer": "gold"})
    assert location(granted).endswith("m=granted")

    # Disable: the customer can no longer log in.
    disabled = manager.post(f"/people/{pid}/disable")
    assert location(disabled).endswith("m=disabled")
    refused = server.post("/cgi-bin/login", {"email": address, "password": "temporary pass 9", "locale": "en"})
    assert location(refused) == server.url + "/login.invalid-login.html"

    # Everything was audited as the staff member, with their address.
    actors = {row["actor"] for row in site_sql(server.site, f"SELECT actor FROM audit WHERE person_id = {pid}")}
    assert f"staff:{manager.email}" in actors, actors
    froms = {row["remote_addr"] for row in site_sql(server.site, f"SELECT remote_addr FROM audit WHERE actor = 'staff:{manager.email}'")}
    assert froms == {"127.0.0.1"}, froms
    assert owner.get("/staff").status == 200


# --- roles: every action above a role's rank is refused on the server ----------------------------
RANKS = ["viewer", "support", "manager", "owner"]
# (action, least role, path with {pid}/{sid}/{mail}, fields)
ACTIONS = [
    ("reset", "support", "/people/{pid}/reset", {}),
    ("welcome", "support", "/people/{pid}/welcome", {}),
    ("retry", "support", "/people/{pid}/retry", {"mail": "{mail}"}),
    ("end-sessions", "support", "/people/{pid}/end-sessions", {}),
    ("add-contact", "support", "/people", {"email": "contact-{n}@example.com", "kind": "contact"}),
    ("bulk-reset", "support", "/people/bulk-reset", {"ids": "{pid}", "confirmed": "yes"}),
    ("create", "manager", "/people", {"email": "made-{n}@example.com", "kind": "customer", "send_email": "yes"}),
    ("set-password", "manager", "/people/{pid}/set-password", {"new_password": "another pass 1", "confirm_password": "another pass 1"}),
    ("set-email", "manager", "/people/{pid}/set-email", {"new_email": "moved-{n}@example.com"}),
    ("grant", "manager", "/people/{pid}/grant", {"offer": "silver"}),
    ("revoke", "manager", "/people/{pid}/revoke", {"offer": "gold"}),
    ("disable", "manager", "/people/{pid}/disable", {}),
    ("enable", "manager", "/people/{disabled}/enable", {}),
    ("delete", "owner", "/people/{pid}/delete", {"confirm": "{email}"}),
    ("offers", "owner", "/offers", {"slug": "new-{n}", "name": "New"}),
    ("staff-add", "owner", "/staff", {"email": "hire-{n}@example.com", "role": "viewer"}),
    ("staff-role", "owner", "/staff/{sid}/role", {"role": "owner"}),
]
STATE = ("person", "access_grant", "reset_token", "session", "mail", "offer", "staff", "staff_recovery_code", "staff_enrolment")


@pytest.fixture(scope="module")
def roles(server):
    admin_ok(server.site, "offer", "add", "silver", "--name", "Silver")
    return {role: enrol(server, unique(role), role) for role in RANKS}


@pytest.mark.parametrize("role", RANKS[:-1])
@pytest.mark.parametrize("action,least,path,fields", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_an_action_above_the_role_is_refused_and_changes_nothing(server, roles, role, action, least, path, fields):
    if RANKS.index(role) >= RANKS.index(least):
        pytest.skip(f"{role} may {action}")
    address, pid = customer(server)
    admin_ok(server.site, "user", "reset", address)
    disabled, disabled_id = customer(server)
    admin_ok(server.site, "user", "disable", disabled)
    mail_id = site_sql(server.site, f"SELECT id FROM mail WHERE person_id = {pid}")[0]["id"]
    other = enrol(server, unique("other"), "viewer")
    sid = site_sql(server.site, f"SELECT id FROM staff WHERE email = '{other.email}'")[0]["id"]
    n = next(_serial)
    values = {"pid": pid, "sid": sid, "mail": mail_id, "disabled": disabled_id, "email": address, "n": n}
    staff = roles[role]
    before = site_dump(server.site, *STATE)
    resp = staff.post(path.format(**values), {k: v.format(**values) for k, v in fields.items()})
    assert resp.status == 403, (action, role, resp.status, resp.headers.get("location"))
    assert site_dump(server.site, *STATE) == before, f"{role} changed the database trying {action}"


def test_pages_show_only_the_actions_a_role_allows(server, roles):
    address, pid = customer(server)
    viewer = roles["viewer"].get(f"/people/{pid}")
    assert viewer.status == 200 and f"/people/{pid}/reset" not in viewer.text and "Your role can only read" in viewer.text
    support = roles["support"].get(f"/people/{pid}")
    assert f"/people/{pid}/reset" in support.text and f"/people/{pid}/set-password" not in support.text
    manager = roles["manager"].get(f"/people/{pid}")
    assert f"/people/{pid}/set-password" in manager.text and f"/people/{pid}/delete" not in manager.text
    assert f"/people/{pid}/delete" in roles["owner"].get(f"/people/{pid}").text
    assert roles["manager"].get("/staff").status == 403 and roles["owner"].get("/staff").status == 200


def test_a_contacts_record_offers_no_reset_only_grant_access(server, roles):
    address = unique("contact")
    admin_ok(server.site, "contact", "add", address)
    pid = person_id(server, address)
    page = roles["owner"].get(f"/people/{pid}")
    assert f"/people/{pid}/grant" in page.text and f"/people/{pid}/reset" not in page.text
    assert f"/people/{pid}/set-password" not in page.text


def test_nobody_acts_on_their_own_staff_account(server, roles):
    owner = roles["owner"]
    own = site_sql(server.site, f"SELECT id FROM staff WHERE email = '{owner.email}'")[0]["id"]
    before = site_dump(server.site, "staff")
    for name, fields in (("role", {"role": "viewer"}), ("disable", {}), ("remove", {})):
        resp = owner.post(f"/staff/{own}/{name}", fields)
        assert resp.status == 403, (name, resp.status)
    assert site_dump(server.site, "staff") == before


# --- CSRF, Origin, timeouts ----------------------------------------------------------------------
def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(server, roles):
    address, pid = customer(server)
    staff = roles["manager"]
    before = site_dump(server.site, *STATE)
    no_token = staff.post(f"/people/{pid}/disable", {}, csrf=False)
    wrong_token = staff.post(f"/people/{pid}/disable", {"csrf": "A" * 43}, csrf=False)
    foreign = staff.post(f"/people/{pid}/disable", {}, headers={"Origin": "https://evil.example"})
    cross = staff.post(f"/people/{pid}/disable", {}, headers={"Sec-Fetch-Site": "cross-site"})
    assert [no_token.status, wrong_token.status, foreign.status, cross.status] == [403, 403, 403, 403]
    assert site_dump(server.site, *STATE) == before


def test_console_pages_carry_the_security_headers(server, roles):
    resp = roles["viewer"].get("/people")
    assert resp.status == 200
    assert "no-store" in resp.headers["cache-control"]
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp
    assert resp.headers["x-frame-options"] == "DENY" and resp.headers["referrer-policy"] == "no-referrer"
    login = roles["viewer"].login()
    cookie = [h for h in login.all("set-cookie") if h.startswith("lk_staff=")][0]
    for part in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in cookie, cookie


@pytest.fixture
def quick_site(make_site):
    """start(**admin): a console of its own with those `admin` settings (short timeouts, low limits)."""
    with contextlib.ExitStack() as servers:
        yield lambda **admin: servers.enter_context(running("apache", deep_merge(CONFIG, {"admin": admin}), offer="gold"))


def test_an_idle_session_times_out_and_its_posts_are_refused(quick_site):
    srv = quick_site(idle_timeout="2s")
    staff = enrol(srv, unique("idle"), "manager")
    address, pid = customer(srv)
    assert staff.get("/people").status == 200
    time.sleep(2.5)
    page = staff.get("/people")
    assert page.status == 303 and "/cgi-bin/admin/login" in location(page)
    before = site_dump(srv.site, *STATE)
    assert staff.post(f"/people/{pid}/disable").status == 403
    assert site_dump(srv.site, *STATE) == before


def test_sensitive_actions_need_a_fresh_code(quick_site):
    srv = quick_site(step_up_window="1s")
    staff = enrol(srv, unique("stepup"), "owner")
    address, pid = customer(srv)
    time.sleep(1.2)
    form = {"new_password": "stepped up pass", "confirm_password": "stepped up pass"}
    before = site_dump(srv.site, *STATE)
    refused = staff.post(f"/people/{pid}/set-password", form)
    assert location(refused).endswith(f"/people/{pid}/set-password?m=step_up_refused")
    assert site_dump(srv.site, *STATE) == before
    asks = staff.get(f"/people/{pid}/set-password")
    assert 'name="code"' in asks.text
    done = staff.post(f"/people/{pid}/set-password", {**form, "code": staff.recovery_code()})
    assert location(done).endswith("m=password_set")
    # A support action needs no code.
    assert location(staff.post(f"/people/{pid}/reset")).endswith("m=reset_sent")


# --- the second factor ----------------------------------------------------------------------------
def test_a_totp_code_is_accepted_once(server):
    staff = enrol(server, unique("once"), "viewer")
    code = staff.totp(1)
    first = staff.login(code)
    assert first.status == 303 and location(first).endswith(BASE + "/"), first.text[:300]
    again = Staff(server, staff.email, staff.secret, []).login(code)
    assert location(again).endswith("/login?m=login_failed") and cookie_of(again, "lk_staff") is None
    detail = site_sql(server.site, f"SELECT detail FROM audit WHERE action = 'staff.login-failed' AND subject = '{staff.email}'")
    assert detail[-1]["detail"] == "wrong code"


def test_a_recovery_code_works_once(server):
    staff = enrol(server, unique("recovery"), "viewer")
    code = staff.recovery_code()
    assert cookie_of(staff.login(code), "lk_staff")
    assert cookie_of(Staff(server, staff.email, staff.secret, []).login(code), "lk_staff") is None
    assert cookie_of(staff.login(staff.recovery_code()), "lk_staff")


def test_failures_answer_alike_and_repeated_failures_lock_the_account(quick_site):
    srv = quick_site(login_failures_per_account={"count": 3, "window": "1h"})
    staff = enrol(srv, unique("locked"), "viewer")
    answers = [staff.login(password="wrong password!") for _ in range(2)]
    answers.append(Staff(srv, "nobody@example.com", staff.secret, []).login())
    answers.append(staff.login(code="000000"))
    assert {location(a) for a in answers} == {srv.url + BASE + "/login?m=login_failed"}
    locked = staff.login()
    assert cookie_of(locked, "lk_staff") is None
    reasons = [r["detail"] for r in site_sql(srv.site, f"SELECT detail FROM audit WHERE action = 'staff.login-failed' AND subject = '{staff.email}'")]
    assert reasons == ["wrong password", "wrong password", "wrong code", "throttled"], reasons


def test_nothing_audited_holds_a_password_code_or_secret(server, roles):
    staff = enrol(server, unique("secretive"), "owner")
    address, pid = customer(server)
    staff.post(f"/people/{pid}/set-password", {"new_password": "never audited 1", "confirm_password": "never audited 1"})
    dump = site_dump(server.site, "audit").decode()
    for secret in ("never audited 1", STAFF_PASSWORD, staff.secret, *staff.codes, staff.totp(), "token="):
        assert secret not in dump, secret


def test_allow_from_closes_the_console_to_other_addresses(quick_site):
    srv = quick_site(allow_from=["10.0.0.0/8", "2001:db8::/32"])
    assert srv.get(BASE + "/login").status == 403
    assert srv.get("/login.html").status == 200


# --- bad input --------------------------------------------------------------------------------------
BAD = [
    ("unknown-route", "GET", "/nowhere", None, 404),
    ("non-numeric-id", "GET", "/people/abc", None, 404),
    ("huge-id", "GET", "/people/99999999999999999999", None, 404),
    ("nobody", "GET", "/people/999999", None, 404),
    ("unknown-action", "POST", "/people/{pid}/explode", {}, 404),
    ("other-persons-mail", "POST", "/people/{pid}/retry", {"mail": "{other_mail}"}, 404),
    ("mail-not-a-number", "POST", "/people/{pid}/retry", {"mail": "x"}, 400),
    ("no-such-offer", "POST", "/people/{pid}/grant", {"offer": "nope"}, 404),
    ("oversized", "POST", "/people/{pid}/reset", {"padding": "x" * 9000}, 413),
    ("bulk-too-many", "POST", "/people/bulk-reset", [("ids", "{pid}")] * 26 + [("confirmed", "yes")], 400),
    ("bulk-other-id", "POST", "/people/bulk-reset", [("ids", "999999"), ("confirmed", "yes")], 404),
    ("staff-no-such-role", "POST", "/staff/{sid}/role", {"role": "emperor"}, 400),
    ("put", "PUT", "/people", None, 405),
    ("bad-percent", "RAW", "/people/{pid}/reset", b"csrf=%zz", 400),
    ("invalid-utf8", "RAW", "/people/{pid}/set-email", b"new_email=a%FF%40example.com", 400),
    ("nul-in-field", "RAW", "/people/{pid}/set-email", b"new_email=a%00b%40example.com", 400),
    ("field-twice", "RAW", "/people/{pid}/grant", b"offer=gold&offer=silver", 400),
    ("not-a-form", "TEXT", "/people/{pid}/reset", b"csrf=x", 415),
]


@pytest.mark.parametrize("name,method,path,fields,status", BAD, ids=[b[0] for b in BAD])
def test_bad_console_input_gets_a_4xx_and_changes_nothing(server, roles, name, method, path, fields, status):
    address, pid = customer(server)
    admin_ok(server.site, "user", "reset", address)
    other, other_pid = customer(server)
    admin_ok(server.site, "user", "reset", other)
    other_mail = site_sql(server.site, f"SELECT id FROM mail WHERE person_id = {other_pid}")[0]["id"]
    sid = site_sql(server.site, f"SELECT id FROM staff WHERE email = '{roles['viewer'].email}'")[0]["id"]
    values = {"pid": pid, "other_mail": other_mail, "sid": sid}
    staff = roles["owner"]
    before = site_dump(server.site, *STATE)
    target = path.format(**values)
    if method == "GET":
        resp = staff.get(target)
    elif method == "POST":
        pairs = fields.items() if isinstance(fields, dict) else fields
        resp = staff.post(target, [(k, v.format(**values)) for k, v in pairs])
    elif method in ("RAW", "TEXT"):
        kind = "application/x-www-form-urlencoded" if method == "RAW" else "text/plain"
        resp = server.request("POST", BASE + target, body=fields, headers={**staff.headers(), "Content-Type": kind})
    else:
        resp = server.request(method, BASE + target, headers=staff.headers())
    assert resp.status == status, (name, resp.status, resp.headers.get("location"))
    assert site_dump(server.site, *STATE) == before


def test_bulk_reset_from_search_results_confirms_then_mails_each(server, roles):
    first, first_id = customer(server)
    second, second_id = customer(server)
    staff = roles["support"]
    ask = staff.post("/people/bulk-reset", [("ids", str(first_id)), ("ids", str(second_id))])
    assert ask.status == 200 and first in ask.text and second in ask.text and 'name="confirmed" value="yes"' in ask.text
    assert mails_to(server, first) == [] and mails_to(server, second) == []
    done = staff.post("/people/bulk-reset", [("ids", str(first_id)), ("ids", str(second_id)), ("confirmed", "yes")])
    assert location(done).endswith("/people?m=bulk_sent")
    assert wait_for_mail(server, first) and wait_for_mail(server, second)


def test_staff_choose_their_language(server):
    staff = enrol(server, unique("polyglot"), "viewer")
    assert 'lang="en"' in staff.get("/people").text
    chosen = staff.post("/locale", {"locale": "fr"})
    assert chosen.status == 303
    page = staff.get("/people")
    assert 'lang="fr"' in page.text and "Personnes" in page.text
    assert staff.post("/locale", {"locale": "xx"}).status == 400


def test_a_session_ends_at_its_absolute_timeout_however_busy(quick_site):
    srv = quick_site(absolute_timeout="3s")
    staff = enrol(srv, unique("busy"), "viewer")
    for _ in range(3):
        assert staff.get("/people").status == 200
        time.sleep(0.5)
    time.sleep(2)
    page = staff.get("/people")
    assert page.status == 303 and "/cgi-bin/admin/login" in location(page)


def test_repeated_failures_from_one_address_lock_that_address(quick_site):
    srv = quick_site(login_failures_per_ip={"count": 3, "window": "1h"})
    staff = enrol(srv, unique("victim"), "viewer")
    for n in range(3):
        Staff(srv, unique(f"guess{n}-"), staff.secret, []).login(password="not the password")
    locked = staff.login()
    assert cookie_of(locked, "lk_staff") is None
    last = site_sql(srv.site, f"SELECT detail FROM audit WHERE action = 'staff.login-failed' AND subject = '{staff.email}'")
    assert last[-1]["detail"] == "throttled", last
