"""A staff member driving the console over HTTP, for the console's end-to-end tests.

`enrol(server, email, role)` does what a new staff member does: `latchkey staff add` prints the
enrolment link; the page shows the TOTP secret (`#totp-secret`) and recovery codes
(`#recovery-codes`); the form is posted with a password and a code computed from the secret by
pyotp, as an authenticator app would. The returned `Staff` holds the console cookie and reads
the CSRF token from each page it fetches.
"""
from __future__ import annotations

import html
import re
import time
import urllib.parse

import pyotp

from lkserver import admin_ok

STAFF_PASSWORD = "staff passphrase 42"
BASE = "/cgi-bin/admin"


def field(page: str, element_id: str) -> str:
    """The text of the element with `element_id` on `page`."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert match, f"no #{element_id} on the page:\n{page[:3000]}"
    return html.unescape(match.group(1)).strip()


def codes_on(page: str) -> list[str]:
    block = re.search(r'id="recovery-codes"[^>]*>(.*?)</ul>', page, re.S)
    assert block, page[:3000]
    return re.findall(r"<code>([a-z2-7]{5}-[a-z2-7]{5})</code>", block.group(1))


class Staff:
    """One staff member's browser-less session in the console."""

    def __init__(self, server, email: str, secret: str, codes: list[str], cookie: str = ""):
        self.server = server
        self.email = email
        self.secret = secret
        self.codes = list(codes)
        self.cookie = cookie
        self.csrf = ""

    # --- codes ----------------------------------------------------------------------------
    def totp(self, offset_steps: int = 0) -> str:
        return pyotp.TOTP(self.secret).at(time.time() + 30 * offset_steps)

    def recovery_code(self) -> str:
        return self.codes.pop()

    # --- HTTP -----------------------------------------------------------------------------
    def headers(self) -> dict:
        return {"Cookie": f"lk_staff={self.cookie}"} if self.cookie else {}

    def get(self, path: str):
        resp = self.server.get(BASE + path, headers=self.headers())
        token = re.search(r'name="csrf" value="([^"]+)"', resp.text)
        if token:
            self.csrf = token.group(1)
        return resp

    def post(self, path: str, fields: dict | list | None = None, csrf: bool = True, headers: dict | None = None):
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields or [])
        if csrf:
            if not self.csrf:
                self.get("/people")
            pairs.append(("csrf", self.csrf))
        body = urllib.parse.urlencode(pairs).encode()
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", **self.headers(), **(headers or {})}
        return self.server.request("POST", BASE + path, body=body, headers=all_headers)

    def login(self, code: str | None = None, password: str = STAFF_PASSWORD):
        resp = self.post("/login", {"email": self.email, "password": password, "code": code or self.totp(1)}, csrf=False)
        value = cookie_of(resp, "lk_staff")
        if value:
            self.cookie = value
            self.csrf = ""
        return resp


def cookie_of(resp, name: str) -> str | None:
    for header in resp.all("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0].strip()
    return None


def location(resp) -> str:
    return resp.headers.get("location", "")


def enrolment_link(output: str) -> str:
    links = re.findall(r"https?://\S+/cgi-bin/admin/enrol\?token=[A-Za-z0-9_-]{43}", output)
    assert len(links) == 1, output
    return links[0]


def enrol(server, email: str, role: str, password: str = STAFF_PASSWORD) -> Staff:
    """Adds `email` to the staff with `role` and completes enrolment as they would."""
    added = admin_ok(server.site, "staff", "add", email, "--role", role)
    link = enrolment_link(added.stdout)
    path = link[len(server.url):]
    page = server.get(path)
    assert page.status == 200, page.text[:2000]
    secret, codes = field(page.text, "totp-secret"), codes_on(page.text)
    assert len(codes) == 10, codes
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    staff = Staff(server, email, secret, codes)
    done = staff.post("/enrol", {"token": token, "new_password": password, "confirm_password": password, "code": staff.totp()}, csrf=False)
    assert done.status == 303 and location(done).endswith(BASE + "/?m=enrolled"), (done.status, done.headers, done.text[:500])
    staff.cookie = cookie_of(done, "lk_staff")
    assert staff.cookie, done.all("set-cookie")
    return staff
