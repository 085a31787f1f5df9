"""Hostile and malformed input, row by row, against the built CGIs (SPEC §8: "Bad input gets a
clear 4xx page and changes nothing").

Each row of the table is one request to `forgot`, `reset` (POST), `login` or `account`. It runs
twice where it can:

- `cgi`: the executable from cgi-bin/ started directly in a real CGI environment (REQUEST_METHOD,
  CONTENT_TYPE, CONTENT_LENGTH, HTTP_COOKIE, REMOTE_ADDR, LATCHKEY_CONFIG…; the body on stdin;
  as www-data), which is the only way to send a CONTENT_LENGTH that lies;
- `apache`: the same request through a real Apache (rows whose point is a broken
  CONTENT_LENGTH are left out: Apache itself would refuse or fix those before the CGI runs).

The form inside every row would do real work if it got through (mail the customer, log in,
set a new password), so "nothing changed" is a real check. A row asserts the status, the page
(the Location of a 303, or a body naming the 4xx status), and that the database's logical
content (`sqlite3 .dump`) is unchanged. Rows whose normal answer legitimately writes (a failed
login counts towards the throttle and is audited; forgot's after-response worker writes
throttle, audit and mail rows) compare only the tables that must never move on such input:
person, reset_token and session.
"""
from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field

import argon2
import pytest

from lkserver import (
    ApacheServer, Site, run_cgi, site_dump, site_sql, wait_site_idle,
)

CUSTOMER = "ann.customer@example.com"
OTHER = "bob.other@example.com"
PASSWORD = "old-password-1"
OTHER_PASSWORD = "bobs-password-9"
NEW_PASSWORD = "brand new pass phrase 2"
OFFER = "gold"

# What every endpoint is sent when a row does not say otherwise: a form that works.
FORMS = {
    "forgot": [("email", CUSTOMER), ("locale", "en")],
    "login": [("email", CUSTOMER), ("password", PASSWORD), ("locale", "en")],
    "reset": [("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD), ("locale", "en")],
    "account": [("current_password", PASSWORD), ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD), ("locale", "en")],
}
# The field a row's hostile value goes into.
TARGET = {"forgot": "email", "login": "email", "reset": "new_password", "account": "new_password"}
ALLOW = {"forgot": {"POST"}, "login": {"POST"}, "reset": {"GET", "POST"}, "account": {"GET", "POST"}}
ENDPOINTS = ["forgot", "reset", "login", "account"]

# Tables that no refused or generic answer may touch.
CORE_TABLES = ("person", "reset_token", "session")


def encode(pairs, raw: dict | None = None) -> bytes:
    """`pairs` form-encoded; values named in `raw` go in exactly as given (already encoded)."""
    raw = raw or {}
    parts = []
    for name, value in pairs:
        if name in raw:
            parts.append(f"{name}={raw[name]}")
        else:
            parts.append(urllib.parse.urlencode([(name, value)]))
    return "&".join(parts).encode()


@dataclass
class Row:
    """One hostile request and what must come of it."""
    id: str
    endpoint: str
    body: bytes
    status: int
    page: str | None = None          # the page a 303 must point at (without .html)
    method: str = "POST"
    content_type: str | None = "application/x-www-form-urlencoded"
    content_length: object = "auto"  # "auto", None (left out) or a value sent as is
    cookie: str | None = "default"   # "default": the endpoint's working cookie
    scope: str = "all"               # "all": the whole database unchanged; "core": CORE_TABLES
    apache: bool = True              # also sent through Apache
    extra: dict = field(default_factory=dict)


def rows() -> list[Row]:
    out: list[Row] = []
    for ep in ENDPOINTS:
        form, target = FORMS[ep], TARGET[ep]
        base = encode(form)

        def with_value(raw_value: str) -> bytes:
            return encode(form, {target: raw_value})

        padding = b"&padding=" + b"x" * (9000 - len(base) - len(b"&padding="))
        out.append(Row(f"{ep}-oversized-9000-bytes", ep, base + padding, 413))
        out.append(Row(f"{ep}-content-length-missing", ep, base, 411, content_length=None, apache=False))
        out.append(Row(f"{ep}-content-length-negative", ep, base, 400, content_length=-5, apache=False))
        out.append(Row(f"{ep}-content-length-larger-than-body", ep, base, 400, content_length=len(base) + 100,
                       apache=False))
        # A CONTENT_LENGTH shorter than the body: only that many bytes are read and parsed, so the
        # first field arrives cut to six characters: a form like any other, with its normal answer.
        cut = len(form[0][0]) + 1 + 6
        truncated = {
            "forgot": ("forgot.invalid-email", "all"),   # "ann.cu": not an address
            "login": ("login.invalid-login", "core"),    # "ann.cu": no such account (audited)
            "reset": ("reset.too-short", "all"),         # "brand ": six characters
            "account": ("account.wrong-current", "core"),  # "old-pa": wrong current password (audited)
        }[ep]
        out.append(Row(f"{ep}-content-length-smaller-than-body", ep, base, 303, truncated[0], content_length=cut,
                       scope=truncated[1], apache=False))
        for kind, value in [("percent-zz", "ann%zz@example.com"), ("percent-truncated", "ann@example.com%4"),
                            ("utf8-c3-28", "ann%C3%28@example.com"), ("utf8-ff", "ann%FF@example.com"),
                            ("nul", "ann%00@example.com"), ("crlf", "ann@example.com%0D%0ABcc:%20x@evil.example")]:
            out.append(Row(f"{ep}-{kind}", ep, with_value(value), 400))
        long_value = "a" * 5988 + "@example.com"  # 6,000 characters; the whole body stays under 8 KiB
        long_answer = {"forgot": ("forgot.invalid-email", "all"), "login": ("login.invalid-login", "core"),
                       "reset": ("reset.too-long", "all"), "account": ("account.too-long", "all")}[ep]
        out.append(Row(f"{ep}-6000-character-{target.replace('_', '-')}", ep, with_value(long_value), 303,
                       long_answer[0], scope=long_answer[1]))
        out.append(Row(f"{ep}-duplicate-field", ep, base + f"&{target}=b".encode(), 400))
        missing = {"forgot": ("forgot.invalid-email", "all"), "login": ("login.invalid-login", "core"),
                   "reset": ("reset.too-short", "all"), "account": ("account.wrong-current", "core")}[ep]
        out.append(Row(f"{ep}-missing-fields", ep, b"locale=en", 303, missing[0], scope=missing[1]))
        for method in ("PUT", "DELETE"):
            out.append(Row(f"{ep}-method-{method}", ep, base, 405, method=method))
        for ctype in ("text/plain", "multipart/form-data; boundary=xyz", "application/json"):
            out.append(Row(f"{ep}-content-type-{ctype.split(';')[0].replace('/', '-')}", ep, base, 415,
                           content_type=ctype))

    # Addresses that are odd but not malformed: the normal answer, no crash.
    for address in ("ünïcode@exämple.com", "user@xn--exmple-cua.com", "x'OR'1'='1@example.com"):
        body = encode([("email", address), ("locale", "en")])
        out.append(Row(f"forgot-odd-address-{address}", "forgot", body, 303, "forgot-sent", scope="core"))
        body = encode([("email", address), ("password", "whatever-it-is"), ("locale", "en")])
        out.append(Row(f"login-odd-address-{address}", "login", body, 303, "login.invalid-login", scope="core"))
    # SQL metacharacters: just text.
    for sqlish in ("' OR 1=1 --", '"; DROP TABLE person; --'):
        out.append(Row(f"forgot-sql-{sqlish}", "forgot", encode([("email", sqlish), ("locale", "en")]), 303,
                       "forgot.invalid-email"))
        out.append(Row(f"login-sql-{sqlish}", "login",
                       encode([("email", sqlish), ("password", sqlish), ("locale", "en")]), 303,
                       "login.invalid-login", scope="core"))
        out.append(Row(f"login-sql-password-{sqlish}", "login",
                       encode([("email", CUSTOMER), ("password", sqlish), ("locale", "en")]), 303,
                       "login.invalid-login", scope="core"))
        out.append(Row(f"reset-sql-{sqlish}", "reset",
                       encode([("new_password", sqlish), ("confirm_password", sqlish + "x"), ("locale", "en")]),
                       303, "reset.mismatch"))
        out.append(Row(f"account-sql-{sqlish}", "account",
                       encode([("current_password", sqlish), *FORMS["account"][1:]]), 303,
                       "account.wrong-current", scope="core"))
    # Reset tokens that are not tokens.
    for kind, token in [("short", "abc"), ("long", "A" * 44), ("wrong-alphabet", "!" * 43), ("empty", "")]:
        out.append(Row(f"reset-token-{kind}", "reset", encode(FORMS["reset"]), 303, "expired",
                       cookie=f"lk_reset={token}"))
    # Session cookies that are not sessions.
    bad_cookies = [("huge", "lk_session=" + "A" * 5000), ("semicolons", "lk_session=;;;"),
                   ("double-equals", "lk_session==x"), ("non-ascii", "lk_session=ünïcödé-ßession")]
    for kind, cookie in bad_cookies:
        out.append(Row(f"session-cookie-{kind}", "session", b"", 401, method="GET", content_type=None,
                       content_length=None, cookie=cookie))
        out.append(Row(f"account-cookie-{kind}", "account", encode(FORMS["account"]), 303,
                       "account.login-required", cookie=cookie))
    return out


ROWS = rows()
CASES = [pytest.param(row, via, id=f"{via}:{row.id}") for row in ROWS for via in ("cgi", "apache")
         if via == "cgi" or row.apache]


# --- the site ---------------------------------------------------------------------------------------
@dataclass
class World:
    site: Site
    server: ApacheServer
    token: str            # a live reset link of CUSTOMER
    session: str          # a live login session of CUSTOMER
    hashes: dict


def admin(site, *args, input=None):
    result = site.latchkey(*args, input=input)
    site.chown_var()
    assert result.returncode == 0, f"latchkey {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def world(latchkey_path):
    # No throttle may step in: every row must get the answer its input deserves.
    unlimited = {"count": 1000000, "window": "1h"}
    site = Site.create({"throttle": {"forgot_per_address": unlimited, "forgot_per_ip": unlimited,
                                     "login_failures_per_account": unlimited,
                                     "login_failures_per_ip": unlimited}}, build=False)
    server = ApacheServer(site)
    try:
        server.start()
        admin(site, "offer", "add", OFFER, "--name", "Gold")
        for address, password in ((CUSTOMER, PASSWORD), (OTHER, OTHER_PASSWORD)):
            admin(site, "user", "add", address, "--no-email", "--offer", OFFER)
            admin(site, "user", "set-password", address, input=password + "\n")
        printed = admin(site, "user", "reset", CUSTOMER).stdout
        token = re.search(r"token=([A-Za-z0-9_-]{43})", printed).group(1)
        login = run_cgi(site, "login", body=encode(FORMS["login"]))
        assert login.status == 303, login
        session = re.search(r"lk_session=([A-Za-z0-9_-]{43})", login.headers.get("set-cookie", "")).group(1)
        wait_site_idle(site)
        hashes = {r["email"]: r["password_hash"] for r in site_sql(site, "SELECT email, password_hash FROM person")}
        yield World(site, server, token, session, hashes)
    finally:
        server.cleanup()
        site.remove()


def default_cookie(world: World, endpoint: str) -> str | None:
    return {"reset": f"lk_reset={world.token}", "account": f"lk_session={world.session}",
            "session": f"lk_session={world.session}"}.get(endpoint)


def fingerprints(site) -> dict:
    """sha256 of the whole `.dump` ("all") and of its lines for CORE_TABLES ("core")."""
    data = site_dump(site)
    core = [line for line in data.splitlines()
            if any(line.startswith(f"INSERT INTO {t} ".encode()) or line.startswith(f'INSERT INTO "{t}" '.encode())
                   for t in CORE_TABLES)]
    assert core, "the dump should hold the two people"
    return {"all": hashlib.sha256(data).hexdigest(), "core": hashlib.sha256(b"\n".join(core)).hexdigest(),
            "people": sum(line.startswith(b"INSERT INTO person ") for line in core)}


def send(world: World, row: Row, via: str, remote_addr: str):
    cookie = default_cookie(world, row.endpoint) if row.cookie == "default" else row.cookie
    if via == "cgi":
        length = "auto" if row.content_length == "auto" else row.content_length
        kwargs = {}
        if length != "auto":
            kwargs["content_length"] = length
        return run_cgi(world.site, row.endpoint, row.method, row.body, content_type=row.content_type,
                       cookie=cookie, remote_addr=remote_addr, **kwargs)
    headers = {}
    if row.content_type is not None:
        headers["Content-Type"] = row.content_type
    if cookie is not None:
        headers["Cookie"] = cookie.encode("utf-8")  # raw bytes on the wire, as a browser would
    body = row.body if row.method != "GET" else None
    return world.server.request(row.method, f"/cgi-bin/{row.endpoint}", body=body, headers=headers)


@pytest.mark.parametrize("row,via", CASES)
def test_bad_input_gets_its_4xx_or_generic_answer_and_changes_nothing(world, row, via):
    site = world.site
    wait_site_idle(site)
    before = fingerprints(site)

    answer = send(world, row, via, remote_addr=f"198.51.100.{len(row.id) % 250 + 1}")
    what = f"{via} {row.method} {row.endpoint} [{row.id}]"

    assert answer.status < 500, f"{what}: server error {answer.status}: {answer!r}"
    assert answer.status == row.status, (f"{what}: status {answer.status}, expected {row.status}; "
                                         f"location={answer.headers.get('location')!r} body={answer.body[:120]!r}")
    if row.status == 303:
        expected = f"{world.server.url}/{row.page}.html"
        assert answer.headers.get("location") == expected, f"{what}: Location {answer.headers.get('location')!r}"
    elif row.status >= 400 and row.endpoint != "session":
        assert str(row.status).encode() in answer.body, f"{what}: the page does not name {row.status}: {answer.body[:200]!r}"
        assert answer.headers.get("content-type", "").startswith("text/html"), answer.headers
    if row.status == 405:
        allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        assert allowed == ALLOW[row.endpoint], f"{what}: Allow {answer.headers.get('allow')!r}"
    assert "lk_session=" not in answer.headers.get("set-cookie", "").replace("lk_session=;", ""), \
        f"{what}: bad input must not start a session: {answer.headers.get('set-cookie')!r}"

    wait_site_idle(site)  # forgot's after-response worker, when the answer started one
    after = fingerprints(site)
    assert after["people"] == before["people"] == 2, f"{what}: person rows {before['people']} → {after['people']}"
    assert after["core"] == before["core"], f"{what}: person, reset_token or session changed"
    if row.scope == "all":
        assert after["all"] == before["all"], f"{what}: the database changed"


def test_cgi_rows_cover_every_kind_of_bad_input_on_every_endpoint():
    """The table itself: every endpoint gets every kind of row (a guard against rows lost in edits)."""
    kinds = ["oversized-9000-bytes", "content-length-missing", "content-length-negative",
             "content-length-larger-than-body", "content-length-smaller-than-body", "percent-zz",
             "percent-truncated", "utf8-c3-28", "utf8-ff", "nul", "crlf", "duplicate-field", "missing-fields",
             "method-PUT", "method-DELETE", "content-type-text-plain", "content-type-multipart-form-data",
             "content-type-application-json"]
    ids = {row.id for row in ROWS}
    missing = [f"{ep}-{kind}" for ep in ENDPOINTS for kind in kinds if f"{ep}-{kind}" not in ids]
    assert not missing, missing


# --- a token belongs to its person -----------------------------------------------------------------------
def test_reset_token_of_one_person_changes_only_that_persons_password(make_site):
    site = make_site()
    admin(site, "offer", "add", OFFER, "--name", "Gold")
    for address, password in ((CUSTOMER, PASSWORD), (OTHER, OTHER_PASSWORD)):
        admin(site, "user", "add", address, "--no-email", "--offer", OFFER)
        admin(site, "user", "set-password", address, input=password + "\n")
    token_a = re.search(r"token=([A-Za-z0-9_-]{43})", admin(site, "user", "reset", CUSTOMER).stdout).group(1)
    token_b = re.search(r"token=([A-Za-z0-9_-]{43})", admin(site, "user", "reset", OTHER).stdout).group(1)
    before = {r["email"]: r["password_hash"] for r in site_sql(site, "SELECT email, password_hash FROM person")}

    answer = run_cgi(site, "reset", body=encode(FORMS["reset"]), cookie=f"lk_reset={token_a}")
    assert answer.status == 303 and answer.headers["location"].endswith("/reset-done.html"), answer
    wait_site_idle(site)

    after = {r["email"]: r["password_hash"] for r in site_sql(site, "SELECT email, password_hash FROM person")}
    hasher = argon2.PasswordHasher()
    assert hasher.verify(after[CUSTOMER], NEW_PASSWORD), "the token's owner should have the new password"
    assert after[OTHER] == before[OTHER], "another person's password changed"
    assert hasher.verify(after[OTHER], OTHER_PASSWORD)
    tokens = {r["email"]: r for r in site_sql(site, "SELECT p.email, t.used_at, t.voided_at FROM reset_token t "
                                                    "JOIN person p ON p.id = t.person_id")}
    assert tokens[CUSTOMER]["used_at"] is not None, tokens
    assert tokens[OTHER]["used_at"] is None and tokens[OTHER]["voided_at"] is None, \
        f"the other person's link must stay live: {tokens}"
    # … and B's own link still works for B only.
    answer = run_cgi(site, "reset", body=encode([("new_password", "bobs new pass 10"),
                                                 ("confirm_password", "bobs new pass 10"), ("locale", "en")]),
                     cookie=f"lk_reset={token_b}")
    assert answer.status == 303 and answer.headers["location"].endswith("/reset-done.html"), answer
    wait_site_idle(site)
    final = {r["email"]: r["password_hash"] for r in site_sql(site, "SELECT email, password_hash FROM person")}
    assert final[CUSTOMER] == after[CUSTOMER]
    assert hasher.verify(final[OTHER], "bobs new pass 10")
