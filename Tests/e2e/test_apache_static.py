"""The generated site under a real Apache on loopback, from `latchkey webserver apache --standalone`.

Static pages only: the CGI executables are exercised by later test files.
"""
from __future__ import annotations

import pytest

from htmlpage import Page
from lkserver import ApacheServer, Site

SECURITY_HEADERS = ("content-security-policy", "referrer-policy", "x-content-type-options")


@pytest.fixture(scope="module")
def server(latchkey_path):
    site = Site.create({}, build=True)
    srv = ApacheServer(site)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()
        site.remove()


def page(response) -> Page:
    return Page(response.text)


def test_root_serves_the_login_page(server):
    status, headers, body = server.get("/")
    assert status == 200, (status, server.error_log())
    assert b'name="password"' in body
    assert page(server.get("/")).lang == "en"
    assert headers.get("content-type", "").startswith("text/html")


def test_french_login_page_is_served_in_french(server):
    status, _, body = server.get("/fr/login.html")
    assert status == 200
    assert page(server.get("/fr/login.html")).lang == "fr"
    assert b'lang="fr"' in body


@pytest.mark.parametrize("path", ["/", "/login.html", "/forgot.html", "/reset.html", "/account.html",
                                  "/fr/expired.html", "/es/forgot-sent.html", "/login.invalid-login.html",
                                  "/error-404.html"])
def test_static_pages_carry_security_headers(server, path):
    status, headers, _ = server.get(path)
    assert status == 200
    missing = [h for h in SECURITY_HEADERS if h not in headers]
    assert not missing, f"{path} lacks {missing}; has {sorted(headers)}"
    assert headers["referrer-policy"].strip() == "no-referrer"
    assert headers["x-content-type-options"].strip() == "nosniff"
    csp = headers["content-security-policy"]
    assert "default-src" in csp or "script-src" in csp, csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[-1].split(";")[0], csp


def test_well_known_change_password_redirects_303_to_the_account_settings_page(server):
    status, headers, _ = server.get("/.well-known/change-password")
    assert status == 303, status
    location = headers.get("location", "")
    assert location in ("/cgi-bin/account", server.url + "/cgi-bin/account"), location


def test_stylesheet_is_served_as_css(server):
    status, headers, body = server.get("/assets/latchkey.css")
    assert status == 200
    assert headers.get("content-type", "").split(";")[0].strip() == "text/css"
    assert body.strip()
    status, headers, _ = server.get("/assets/brand.css")
    assert status == 200 and headers["content-type"].startswith("text/css")


def test_missing_page_is_404(server):
    status, headers, body = server.get("/no-such-page.html")
    assert status == 404
    assert headers.get("content-type", "").startswith("text/html")


@pytest.mark.parametrize("path", ["/var/secret.key", "/var/latchkey.sqlite3", "/latchkey.json",
                                  "/../var/secret.key", "/%2e%2e/var/secret.key", "/..%2fvar/secret.key",
                                  "/../latchkey.json", "/templates/pages/login.html",
                                  "/locales/en.json", "/public/login.html"])
def test_database_key_and_site_source_are_not_reachable(server, path):
    status, _, body = server.get(path)
    assert status in (400, 403, 404), f"{path} answered {status}"
    key = (server.site.var / "secret.key").read_bytes().strip()
    assert key not in body
    assert b"SQLite format" not in body
