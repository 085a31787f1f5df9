"""Cookie names and flags over plain HTTP and over HTTPS (Apache with mod_ssl, self-signed
certificate for 127.0.0.1, base_url https://127.0.0.1:PORT)."""
from __future__ import annotations

import urllib.parse

import pytest

from lkserver import ApacheServer, HttpsApacheServer, Site

PASSWORD = "correct horse battery"
MEMBERS_TEXT = "Welcome to the members area"


def set_cookies(resp) -> dict[str, str]:
    return {h.split("=", 1)[0].strip(): h for h in resp.all("set-cookie")}


def attrs(header: str) -> dict[str, str]:
    """Attribute name (lower-case) → value ('' for flags) of one Set-Cookie header."""
    out = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def value_of(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def login(srv, password=PASSWORD, headers=None):
    return srv.post("/cgi-bin/login", {"email": "ann@example.com", "password": password, "locale": "en"},
                    headers=headers)


def serve(server_class):
    site = Site.create({}, build=True)
    srv = server_class(site)
    try:
        srv.start()
        for args, stdin in [(("offer", "add", "gold", "--name", "Gold"), None),
                            (("user", "add", "ann@example.com", "--name", "Ann", "--no-email", "--offer", "gold"), None),
                            (("user", "set-password", "ann@example.com"), PASSWORD + "\n")]:
            result = site.latchkey(*args, input=stdin)
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        site.chown_var()
    except BaseException:
        srv.cleanup()
        site.remove()
        raise
    return site, srv


@pytest.fixture(scope="module")
def http_server(latchkey_path):
    site, srv = serve(ApacheServer)
    yield srv
    srv.cleanup()
    site.remove()


@pytest.fixture(scope="module")
def https_server(latchkey_path):
    site, srv = serve(HttpsApacheServer)
    yield srv
    srv.cleanup()
    site.remove()


def reset_link_path(srv) -> str:
    result = srv.site.latchkey("user", "reset", "ann@example.com")
    assert result.returncode == 0, result.stderr
    srv.site.chown_var()
    link = result.stdout.splitlines()[1].strip()
    assert link.startswith(srv.url + "/cgi-bin/reset?token="), link
    parts = urllib.parse.urlsplit(link)
    return f"{parts.path}?{parts.query}"


# --- plain HTTP --------------------------------------------------------------------------------------

def test_session_cookie_over_http_is_lk_session_httponly_lax_without_secure(http_server):
    resp = login(http_server)
    assert resp.status == 303 and resp.headers["location"] == http_server.url + "/members/"
    cookies = set_cookies(resp)
    assert "lk_session" in cookies and "__Host-lk_session" not in cookies, cookies
    a = attrs(cookies["lk_session"])
    assert a.get("path") == "/"
    assert "httponly" in a
    assert a.get("samesite", "").lower() == "lax"
    assert "secure" not in a, "Secure cookie over plain HTTP would never come back"
    assert "domain" not in a
    assert len(value_of(cookies["lk_session"])) == 43


def test_reset_cookie_over_http_is_lk_reset_without_secure(http_server):
    resp = http_server.get(reset_link_path(http_server))
    assert resp.status == 303 and resp.headers["location"].startswith(http_server.url + "/reset"), resp.headers
    cookies = set_cookies(resp)
    assert "lk_reset" in cookies, cookies
    a = attrs(cookies["lk_reset"])
    assert "secure" not in a and "httponly" in a
    assert a.get("path", "").startswith("/cgi-bin/reset"), a
    assert "token=" not in resp.headers["location"], "the token was left in the page's URL"


# --- HTTPS -------------------------------------------------------------------------------------------

def test_https_server_serves_the_login_page(https_server):
    assert https_server.url.startswith("https://127.0.0.1:")
    resp = https_server.get("/login.html")
    assert resp.status == 200 and b'name="password"' in resp.body


def test_session_cookie_over_https_is_host_prefixed_and_secure(https_server):
    resp = login(https_server)
    assert resp.status == 303, (resp.status, resp.headers, https_server.error_log()[-2000:])
    assert resp.headers["location"] == https_server.url + "/members/"
    cookies = set_cookies(resp)
    assert "__Host-lk_session" in cookies and "lk_session" not in cookies, cookies
    a = attrs(cookies["__Host-lk_session"])
    # The __Host- prefix is only honoured by browsers with Secure, Path=/ and no Domain.
    assert "secure" in a
    assert a.get("path") == "/"
    assert "domain" not in a
    assert "httponly" in a
    assert a.get("samesite", "").lower() == "lax"
    assert len(value_of(cookies["__Host-lk_session"])) == 43


def test_https_session_cookie_opens_the_members_area_under_its_prefixed_name_only(https_server):
    value = value_of(set_cookies(login(https_server))["__Host-lk_session"])
    page = https_server.get("/members/", headers={"Cookie": f"__Host-lk_session={value}"})
    assert page.status == 200 and MEMBERS_TEXT in page.text
    assert https_server.get("/cgi-bin/session", headers={"Cookie": f"__Host-lk_session={value}"}).status == 204
    # Without the prefix the cookie could have been planted over plain HTTP: not accepted.
    assert https_server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={value}"}).status == 401


def test_logout_over_https_clears_the_prefixed_cookie_and_ends_the_session(https_server):
    value = value_of(set_cookies(login(https_server))["__Host-lk_session"])
    cookie = {"Cookie": f"__Host-lk_session={value}"}
    out = https_server.post("/cgi-bin/logout", {"locale": "en"}, headers=cookie)
    assert out.status == 303 and out.headers["location"] == https_server.url + "/login.signed-out.html"
    cleared = set_cookies(out).get("__Host-lk_session")
    assert cleared is not None, out.all("set-cookie")
    a = attrs(cleared)
    assert value_of(cleared) == "" and a.get("max-age") == "0"
    assert "secure" in a and a.get("path") == "/", "a __Host- cookie is only cleared with Secure and Path=/"
    assert https_server.get("/cgi-bin/session", headers=cookie).status == 401


def test_reset_cookie_over_https_is_secure_prefixed(https_server):
    resp = https_server.get(reset_link_path(https_server))
    assert resp.status == 303 and resp.headers["location"].startswith(https_server.url + "/reset"), resp.headers
    cookies = set_cookies(resp)
    assert "__Secure-lk_reset" in cookies and "lk_reset" not in cookies, cookies
    a = attrs(cookies["__Secure-lk_reset"])
    assert "secure" in a and "httponly" in a
    assert a.get("path", "").startswith("/cgi-bin/reset"), a


def test_same_origin_https_post_is_accepted(https_server):
    resp = login(https_server, headers={"Origin": https_server.url, "Sec-Fetch-Site": "same-origin"})
    assert resp.status == 303 and "__Host-lk_session" in set_cookies(resp)
