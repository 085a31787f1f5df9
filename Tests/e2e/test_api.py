"""The JSON API (SPEC §11) through a real Apache, as a checkout or a CRM would use it: keys
with scopes (each route refused without its scope and without a key), the whole journey from
create to login, idempotent replays, RFC 9457 problem details for every error, the per-key
rate limit, and the audit trail naming the key. The Authorization header reaching the CGI is
checked under nginx and lighttpd too.
"""
from __future__ import annotations

import json

import pytest

import maildir as mail
from lkserver import ROOT, admin_ok, site_dump, site_sql
from servers import FASTCGI_KINDS, running

ALL_SCOPES = ["people:read", "people:write", "access:write", "mail:send", "links:read"]
CONFIG = {"site_name": "Acme Academy", "api": {"rate_limit": {"count": 100000, "window": "1m"}}}
API = "/cgi-bin/api/v1"
_serial = iter(range(1, 10**6))

# (method, path with {id}/{offer}, JSON body or None, the scope the route needs)
ROUTES = [
    ("GET", "/people?email={email}", None, "people:read"),
    ("GET", "/people/{id}", None, "people:read"),
    ("GET", "/offers", None, "people:read"),
    ("POST", "/people", {"email": "new-{n}@example.com"}, "people:write"),
    ("POST", "/people/{id}/access", {"offer": "gold", "send_welcome": False}, "access:write"),
    ("DELETE", "/people/{id}/access/gold", None, "access:write"),
    ("POST", "/people/{id}/reset", None, "mail:send"),
    ("POST", "/people/{id}/welcome", None, "mail:send"),
]
STATE = ("person", "access_grant", "mail", "reset_token", "session", "api_idempotency")


@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", CONFIG, offer="gold") as srv:
        yield srv


def new_key(server, *scopes, name=None) -> str:
    name = name or f"key-{next(_serial)}"
    result = admin_ok(server.site, "api-key", "add", name, "--scopes", ",".join(scopes))
    key = result.stdout.strip()
    assert key.startswith("lk_") and len(key) == 46, key
    assert "shown only this once" in result.stderr
    return key


def call(server, method, path, key=None, body=None, headers=None, raw=None):
    sent = dict(headers or {})
    if key:
        sent["Authorization"] = f"Bearer {key}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    return server.request(method, API + path, body=data, headers=sent)


def customer(server, key=None, password=None) -> dict:
    """A person with gold access and a password, made through the API."""
    key = key or new_key(server, *ALL_SCOPES)
    address = f"buyer-{next(_serial)}@example.com"
    person = json.loads(call(server, "POST", "/people", key, {"email": address, "name": "Bea Buyer"}).body)
    assert call(server, "POST", f"/people/{person['id']}/access", key, {"offer": "gold", "send_welcome": False}).status == 200
    if password:
        admin_ok(server.site, "user", "set-password", address, input=password + "\n")
    return person


def is_problem(response, status):
    assert response.status == status, (response.status, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = json.loads(response.body)
    assert problem["status"] == status and problem["title"] and problem["detail"] and problem["type"] == "about:blank", problem
    return problem


def fill(path, person, n):
    return path.format(id=person["id"], email=person["email"], n=n)


@pytest.mark.parametrize("method,path,body,scope", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_each_route_is_refused_without_a_key_and_without_its_scope_and_changes_nothing(server, method, path, body, scope):
    person = customer(server)
    n = next(_serial)
    target = fill(path, person, n)
    payload = {k: fill(v, person, n) if isinstance(v, str) else v for k, v in body.items()} if body else None
    before = site_dump(server.site, *STATE)
    is_problem(call(server, method, target, None, payload), 401)
    is_problem(call(server, method, target, "lk_" + "A" * 43, payload), 401)
    others = [s for s in ALL_SCOPES if s != scope]
    denied = is_problem(call(server, method, target, new_key(server, *others), payload), 403)
    assert scope in denied["detail"]
    assert site_dump(server.site, *STATE) == before
    allowed = call(server, method, target, new_key(server, scope), payload)
    assert allowed.status in (200, 201, 202, 204), (allowed.status, allowed.text)


def test_a_checkout_creates_grants_and_the_buyer_gets_the_welcome_mail_and_logs_in(server):
    key = new_key(server, "people:write", "access:write", "people:read", name="checkout")
    address = f"ana-{next(_serial)}@example.com"
    created = call(server, "POST", "/people", key, {"email": address.upper(), "name": "Ana Pérez", "external_id": f"crm-{address}", "locale": "fr"})
    assert created.status == 201, created.text
    person = json.loads(created.body)
    assert created.headers["location"] == f"{server.url}{API}/people/{person['id']}"
    assert person["email"] == address and person["name"] == "Ana Pérez" and person["kind"] == "contact" and person["locale"] == "fr"
    assert person["access"] == [] and person["password_set"] is False and person["last_login_at"] is None
    box = mail.Mailbox(server.site.var / "mail")
    granted = call(server, "POST", f"/people/{person['id']}/access", key, {"offer": "gold"})
    assert granted.status == 200, granted.text
    answer = json.loads(granted.body)
    assert answer["granted"] is True and answer["welcome_sent"] is True and answer["person"]["kind"] == "customer"
    assert [a["offer"] for a in answer["person"]["access"] if a["active"]] == ["gold"]
    welcome = box.wait_for(1, to=address)[-1]
    token = mail.reset_token(welcome, server.url)
    page = server.get(f"/cgi-bin/reset?token={token}")
    cookie = [h.split(";")[0] for h in page.all("set-cookie") if h.startswith("lk_reset=")][0]
    done = server.post("/cgi-bin/reset", {"new_password": "a long new passphrase", "confirm_password": "a long new passphrase", "locale": "fr"},
                       headers={"Cookie": cookie})
    assert done.status == 303, done.text
    login = server.post("/cgi-bin/login", {"email": address, "password": "a long new passphrase", "locale": "en"})
    assert login.status == 303 and "/members/" in login.headers["location"], login.headers
    shown = json.loads(call(server, "GET", f"/people?email={address}", key).body)
    assert shown["password_set"] is True and shown["last_login_at"] is not None and shown["external_id"] == f"crm-{address}"
    # Granting again is no change: no second welcome, no second audit line.
    again = json.loads(call(server, "POST", f"/people/{person['id']}/access", key, {"offer": "gold"}).body)
    assert again["granted"] is False and again["welcome_sent"] is False
    grants = site_sql(server.site, f"SELECT count(*) AS n FROM audit WHERE action = 'access.granted' AND person_id = {person['id']}")
    assert grants == [{"n": 1}]
    kinds = site_sql(server.site, f"SELECT kind FROM mail WHERE person_id = {person['id']} ORDER BY id")
    assert [k["kind"] for k in kinds] == ["welcome", "password-changed"], kinds


def test_posting_a_known_address_finds_the_person_and_updates_only_what_was_sent(server):
    key = new_key(server, "people:write")
    person = customer(server)
    found = call(server, "POST", "/people", key, {"email": person["email"], "name": "Bea Renamed"})
    assert found.status == 200, found.text
    after = json.loads(found.body)
    assert after["id"] == person["id"] and after["name"] == "Bea Renamed" and after["kind"] == "customer"
    assert [a["offer"] for a in after["access"]] == ["gold"]
    unchanged = json.loads(call(server, "POST", "/people", key, {"email": person["email"]}).body)
    assert unchanged["name"] == "Bea Renamed"
    taken = customer(server)
    assert call(server, "POST", "/people", key, {"email": person["email"], "external_id": f"crm-x-{person['id']}"}).status == 200
    clash = is_problem(call(server, "POST", "/people", key, {"email": taken["email"], "external_id": f"crm-x-{person['id']}"}), 422)
    assert clash["field"] == "external_id"


def test_an_idempotency_key_replays_the_first_answer_and_does_nothing_twice(server):
    key = new_key(server, *ALL_SCOPES)
    address = f"idem-{next(_serial)}@example.com"
    headers = {"Idempotency-Key": f"order-{address}"}
    first = call(server, "POST", "/people", key, {"email": address, "name": "Ida"}, headers=headers)
    assert first.status == 201
    # The same members in another order are the same request.
    replay = call(server, "POST", "/people", key, {"name": "Ida", "email": address}, headers=headers)
    assert replay.status == 201 and replay.body == first.body and replay.headers.get("idempotent-replayed") == "true"
    assert replay.headers["location"] == first.headers["location"]
    assert site_sql(server.site, f"SELECT count(*) AS n FROM audit WHERE action = 'person.created' AND subject = '{address}'") == [{"n": 1}]
    other = is_problem(call(server, "POST", "/people", key, {"email": address, "name": "Someone Else"}, headers=headers), 422)
    assert "Idempotency-Key" in other["detail"]
    assert json.loads(call(server, "GET", f"/people?email={address}", key).body)["name"] == "Ida"
    # A key is per API key: another key's same Idempotency-Key is its own request.
    assert call(server, "POST", "/people", new_key(server, "people:write"), {"email": address, "name": "Ida B"}, headers=headers).status == 200
    pid = json.loads(first.body)["id"]
    box = mail.Mailbox(server.site.var / "mail")
    grant = {"Idempotency-Key": f"grant-{address}"}
    g1 = call(server, "POST", f"/people/{pid}/access", key, {"offer": "gold"}, headers=grant)
    g2 = call(server, "POST", f"/people/{pid}/access", key, {"offer": "gold"}, headers=grant)
    assert g1.status == g2.status == 200 and g1.body == g2.body and json.loads(g1.body)["welcome_sent"] is True
    box.wait_for(1, to=address)
    reset = {"Idempotency-Key": f"reset-{address}"}
    r1 = call(server, "POST", f"/people/{pid}/reset", key, headers=reset)
    r2 = call(server, "POST", f"/people/{pid}/reset", key, headers=reset)
    assert r1.status == r2.status == 202 and r1.body == r2.body
    box.wait_for(2, to=address)
    assert len([m for m in box.messages() if mail.recipient(m) == address]) == 2, "one welcome, one reset: no replay mailed again"
    # A refusal is an answer too, replayed the same way.
    gone = {"Idempotency-Key": f"nobody-{address}"}
    is_problem(call(server, "POST", "/people", key, {"email": "not an address"}, headers=gone), 422)
    assert call(server, "POST", "/people", key, {"email": "not an address"}, headers=gone).headers.get("idempotent-replayed") == "true"


def test_the_reset_answer_holds_the_link_only_for_a_key_with_links_read(server):
    person = customer(server, password="the old passphrase")
    plain = json.loads(call(server, "POST", f"/people/{person['id']}/reset", new_key(server, "mail:send")).body)
    assert plain["sent"] is True and "link" not in plain and plain["expires_at"]
    with_links = json.loads(call(server, "POST", f"/people/{person['id']}/reset", new_key(server, "mail:send", "links:read")).body)
    assert with_links["link"].startswith(f"{server.url}/cgi-bin/reset?token=")
    token = with_links["link"].split("token=")[1]
    box = mail.Mailbox(server.site.var / "mail")
    sent = box.wait_for(2, to=person["email"])
    assert mail.reset_token(sent[-1], server.url) == token, "the same live link as emailed (reuse window)"
    welcome = json.loads(call(server, "POST", f"/people/{person['id']}/welcome", new_key(server, "mail:send", "links:read")).body)
    assert welcome["sent"] is True and "link" not in welcome, "a password is set: the welcome is a login link, not a token"


def test_revoking_answers_204_every_time_and_ends_the_last_access_sessions(server):
    key = new_key(server, *ALL_SCOPES)
    person = customer(server, key, password="the old passphrase")
    login = server.post("/cgi-bin/login", {"email": person["email"], "password": "the old passphrase", "locale": "en"})
    cookie = [h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session=")][0]
    assert server.get("/cgi-bin/session", headers={"Cookie": cookie}).status == 204
    assert call(server, "DELETE", f"/people/{person['id']}/access/gold", key).status == 204
    assert server.get("/cgi-bin/session", headers={"Cookie": cookie}).status == 401
    assert call(server, "DELETE", f"/people/{person['id']}/access/gold", key).status == 204
    shown = json.loads(call(server, "GET", f"/people/{person['id']}", key).body)
    assert [a["active"] for a in shown["access"]] == [False] and shown["access"][0]["revoked_at"]


def test_every_action_is_audited_as_the_key_from_the_client_address(server):
    key = new_key(server, *ALL_SCOPES, name="crm-sync")
    person = customer(server, key)
    call(server, "POST", f"/people/{person['id']}/reset", key)
    call(server, "DELETE", f"/people/{person['id']}/access/gold", key)
    rows = site_sql(server.site, f"SELECT actor, action, remote_addr FROM audit WHERE person_id = {person['id']} ORDER BY id")
    assert {r["action"] for r in rows} >= {"person.created", "access.granted", "reset.sent", "access.revoked"}
    assert all(r["actor"] == "api:crm-sync" and r["remote_addr"] == "127.0.0.1" for r in rows), rows
    listed = json.loads(admin_ok(server.site, "api-key", "list", "--json").stdout)
    mine = [k for k in listed if k["name"] == "crm-sync"][0]
    assert mine["scopes"] == sorted(ALL_SCOPES) and mine["last_used_at"] and mine["revoked_at"] is None
    assert "lk_" not in json.dumps(listed), "a key is never shown again"


def test_a_revoked_key_stops_at_once(server):
    key = new_key(server, "people:read", name="old-shop")
    assert call(server, "GET", "/offers", key).status == 200
    admin_ok(server.site, "api-key", "revoke", "old-shop")
    is_problem(call(server, "GET", "/offers", key), 401)
    again = server.site.latchkey("api-key", "revoke", "old-shop")
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "no active key named 'old-shop'" in again.stderr
    new_key(server, "people:read", name="old-shop")


@pytest.mark.parametrize("args,error", [
    (["api-key", "add", "x"], "missing --scopes"),
    (["api-key", "add", "x", "--scopes", "people:read,everything"], "unknown scope 'everything'"),
    (["api-key", "add", "bad name!", "--scopes", "people:read"], "a key name is letters"),
    (["api-key", "add"], "missing NAME"),
])
def test_bad_key_commands_are_one_line_errors(server, args, error):
    before = site_dump(server.site, "api_key")
    result = server.site.latchkey(*args)
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1 and error in result.stderr, result.stderr
    assert site_dump(server.site, "api_key") == before


def bad_requests(person):
    big = json.dumps({"email": "big@example.com", "name": "x" * (64 * 1024)}).encode()
    return [
        ("unknown path", "GET", "/nothing", None, {}, None, 404),
        ("unknown person", "GET", "/people/999999999", None, {}, None, 404),
        ("person id not a number", "GET", "/people/abc", None, {}, None, 404),
        ("nobody with that address", "GET", "/people?email=nobody@example.com", None, {}, None, 404),
        ("find without an address", "GET", "/people", None, {}, None, 400),
        ("method not allowed", "PUT", "/people", None, {}, None, 405),
        ("revoke an unknown offer", "DELETE", f"/people/{person['id']}/access/platinum", None, {}, None, 404),
        ("not JSON", "POST", "/people", None, {"Content-Type": "application/json"}, b"{nope", 400),
        ("JSON but not an object", "POST", "/people", None, {"Content-Type": "application/json"}, b"[1,2]", 400),
        ("a form, not JSON", "POST", "/people", None, {"Content-Type": "application/x-www-form-urlencoded"}, b"email=a%40b.com", 415),
        ("over 64 KiB", "POST", "/people", None, {"Content-Type": "application/json"}, big, 413),
        ("no body", "POST", "/people", None, {}, None, 422),
        ("no email", "POST", "/people", {"name": "No Address"}, {}, None, 422),
        ("not an email", "POST", "/people", {"email": "not-an-address"}, {}, None, 422),
        ("email not a string", "POST", "/people", {"email": 42}, {}, None, 422),
        ("unknown field", "POST", "/people", {"email": "x@example.com", "password": "hunter22"}, {}, None, 422),
        ("unknown locale", "POST", "/people", {"email": "x@example.com", "locale": "tlh"}, {}, None, 422),
        ("name with a newline", "POST", "/people", {"email": "x@example.com", "name": "a\nb"}, {}, None, 422),
        ("grant without an offer", "POST", f"/people/{person['id']}/access", {}, {}, None, 422),
        ("grant an unknown offer", "POST", f"/people/{person['id']}/access", {"offer": "platinum"}, {}, None, 422),
        ("send_welcome not a boolean", "POST", f"/people/{person['id']}/access", {"offer": "gold", "send_welcome": "yes"}, {}, None, 422),
        ("reset with fields", "POST", f"/people/{person['id']}/reset", {"to": "else@example.com"}, {}, None, 422),
        ("idempotency key too long", "POST", "/people", {"email": "x@example.com"}, {"Idempotency-Key": "k" * 300}, None, 400),
    ]


def test_every_bad_request_is_a_problem_document_and_changes_nothing(server):
    key = new_key(server, *ALL_SCOPES)
    person = customer(server, key)
    contact = json.loads(call(server, "POST", "/people", key, {"email": f"contact-{next(_serial)}@example.com"}).body)
    rows = bad_requests(person) + [("reset for a contact", "POST", f"/people/{contact['id']}/reset", None, {}, None, 409)]
    before = site_dump(server.site, *STATE)
    failures = []
    for name, method, path, body, headers, raw, status in rows:
        response = call(server, method, path, key, body, headers=headers, raw=raw)
        try:
            problem = is_problem(response, status)
            if status == 405:
                assert response.headers["allow"] == "GET, POST", response.headers
            if status == 422 and body is not None and body:
                assert problem.get("field"), problem
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)
    assert site_dump(server.site, *STATE) == before


def test_a_key_over_its_rate_is_told_when_to_come_back(latchkey_path):
    with running("apache", {"api": {"rate_limit": {"count": 3, "window": "1m"}}}, offer="gold") as server:
        key = new_key(server, "people:read")
        other = new_key(server, "people:read")
        assert [call(server, "GET", "/offers", key).status for _ in range(3)] == [200, 200, 200]
        limited = call(server, "GET", "/offers", key)
        is_problem(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert call(server, "GET", "/offers", other).status == 200, "the limit is per key"


def test_the_openapi_document_is_served_without_a_key_and_names_this_site(server):
    response = server.get(API + "/openapi.json")
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    document = json.loads(response.body)
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": server.url + "/cgi-bin/api"}]
    repository = json.loads((ROOT / "api" / "openapi.json").read_text())
    assert document["paths"] == repository["paths"] and document["components"] == repository["components"]


@pytest.mark.parametrize("kind", ["nginx", "lighttpd", *FASTCGI_KINDS])
def test_the_bearer_key_reaches_the_api_under_every_server(latchkey_path, kind):
    with running(kind, CONFIG, offer="gold") as server:
        key = new_key(server, "people:read", "people:write")
        is_problem(call(server, "GET", "/offers", None), 401)
        assert json.loads(call(server, "GET", "/offers", key).body)["offers"][0]["slug"] == "gold"
        created = call(server, "POST", "/people", key, {"email": "kind@example.com"})
        assert created.status == 201, created.text
        assert json.loads(call(server, "GET", f"/people/{json.loads(created.body)['id']}", key).body)["email"] == "kind@example.com"
