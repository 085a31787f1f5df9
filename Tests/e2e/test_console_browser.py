"""A support agent's day in the staff console, in a real browser (headless Debian chromium via
Selenium) under Apache, nginx + fcgiwrap and lighttpd: enrolment from the printed link (codes
computed from the secret on the page, as an authenticator app does), login, search, a record,
Reset Password → Send email → the status message and the live link equal to the one mailed,
a new customer, a temporary password, retrying a failed message, grant and revoke, disable.
Every page it lands on has a quiet console; every console page passes axe-core's WCAG 2.2 AA
rules with no serious or critical finding, at 375 px as well as on a desktop, and works from the
keyboard.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import time
import urllib.parse
from pathlib import Path

import pyotp
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

import maildir as mail
from chrome import chromium
from console import BASE, enrol, enrolment_link
from lkserver import ROOT, admin_ok, site_sql
from servers import FASTCGI_KINDS, SERVER_KINDS, running

SHOTS = ROOT / "artifacts" / "console"
PASSWORD = "support agent pass 1"
CUSTOMER_PASSWORD = "customer pass 22"
CONFIG = {"throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"}, "login_failures_per_ip": {"count": 100000, "window": "1h"}}}


def axe_source() -> str:
    """axe-core, from the `axe-playwright-python` package's copy (found without importing it)."""
    spec = importlib.util.find_spec("axe_playwright_python")
    assert spec and spec.submodule_search_locations, "pip install --no-deps axe-playwright-python"
    return (Path(list(spec.submodule_search_locations)[0]) / "axe.min.js").read_text()


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


class Agent:
    """The browser, with the checks made on every page it lands on."""

    def __init__(self, driver, server, axe: str):
        self.d, self.server, self.axe = driver, server, axe
        self.pages_checked: set[str] = set()

    def land(self, path_prefix: str, shot: str) -> str:
        """Waits for the next page (a new document: the last one landed on carried a marker,
        since the next page may share its path, as a form posted to itself does), checks it,
        and returns its text."""
        WebDriverWait(self.d, 10, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return window.latchkeyTestLanded === undefined && document.readyState === 'complete'")
            and urllib.parse.urlsplit(d.current_url).path.startswith(path_prefix))
        errors = [e for e in self.d.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
        assert not errors, f"{self.server.kind} {self.d.current_url}: console errors {errors}"
        body = self.d.find_element(By.TAG_NAME, "body").text
        assert "Error code:" not in body, body[:500]
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SHOTS / f"{self.server.kind}-{shot}.png"))
        page = self.d.find_element(By.TAG_NAME, "body").get_attribute("class")
        if page not in self.pages_checked:
            self.pages_checked.add(page)
            self.accessible(shot)
        self.d.execute_script("window.latchkeyTestLanded = true")  # gone with this page
        return body

    def accessible(self, shot: str) -> None:
        """axe-core's WCAG 2.0–2.2 A and AA rules: no serious or critical finding, at desktop width and at 375 px."""
        for width in (1280, 375):
            self.d.set_window_size(width, 900)
            self.d.execute_script(self.axe)
            result = self.d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
                ".then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)})))));")
            bad = [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]
            assert not bad, f"{self.server.kind} {shot} at {width}px: {bad}"
            overflow = self.d.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                wide = self.d.execute_script(
                    "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
                    "document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className);")
                raise AssertionError(f"{shot} scrolls sideways at {width}px by {overflow}px: {wide}")
            if width == 375:
                self.d.save_screenshot(str(SHOTS / f"{self.server.kind}-{shot}-375.png"))
        self.d.set_window_size(1280, 900)
        self.keyboard(shot)

    def keyboard(self, shot: str) -> None:
        """Tab from the top reaches every control on the page (a radio group is one stop; arrows
        move inside it), each with a visible focus ring."""
        controls = self.d.execute_script(
            "return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, [tabindex=\"0\"]')]"
            ".filter(e => !e.disabled && e.offsetParent !== null && !(e.type === 'radio' && !e.checked)).length;")
        # From the first control in the document (the skip link), Tab after Tab. A click on the
        # heading first gives the page the window's focus, without which nothing matches :focus.
        self.d.find_element(By.TAG_NAME, "h1").click()
        self.d.execute_script("document.querySelector('a[href], button, input:not([type=hidden]), select').focus();")
        seen = set()
        for step in range(controls + 3):
            if step:
                ActionChains(self.d).send_keys(Keys.TAB).perform()
            key, ring = self.d.execute_script(
                "const e = document.activeElement; if (e === document.body || e === document.documentElement) return [null, true];"
                "const s = getComputedStyle(e);"
                "return [e.outerHTML.slice(0, 120) + '@' + [...document.querySelectorAll('*')].indexOf(e),"
                "        s.outlineStyle !== 'none' || s.boxShadow !== 'none'];")
            if key is None or key in seen:
                break
            assert ring, f"{shot}: no visible focus on {key}"
            seen.add(key)
        assert len(seen) >= controls, f"{shot}: Tab reached {len(seen)} of {controls} controls"

    def fill(self, element_id: str, value: str) -> None:
        element = self.d.find_element(By.ID, element_id)
        element.clear()
        element.send_keys(value)

    def click(self, text: str) -> None:
        self.d.find_element(By.XPATH, f"//main//*[self::a or self::button][normalize-space()='{text}']").click()


def wait_mail(site, address, count=1):
    return mail.Mailbox(site.var / "mail").wait_for(count, to=address, timeout=10)


@pytest.mark.parametrize("kind", SERVER_KINDS + FASTCGI_KINDS)
def test_a_support_agents_day_in_the_browser(browser, kind):
    with running(kind, CONFIG) as server:
        site = server.site
        agent = Agent(browser, server, axe_source())
        browser.delete_all_cookies()
        browser.get_log("browser")
        address = f"ada.{kind}@example.com"
        admin_ok(site, "user", "add", address, "--name", "Ada Lovelace", "--offer", "members", "--no-email")
        admin_ok(site, "user", "set-password", address, input=CUSTOMER_PASSWORD + "\n")

        # Enrolment from the printed link; the authenticator is pyotp, reading the secret off the page.
        link = enrolment_link(admin_ok(site, "staff", "add", f"sam.{kind}@example.com", "--role", "manager", "--name", "Sam").stdout)
        browser.get(link)
        agent.land(BASE + "/enrol", "01-enrol")
        secret = browser.find_element(By.ID, "totp-secret").text.strip()
        # The QR code, scanned by a real decoder (zbar) as an app's camera would, holds that secret.
        qr_png = SHOTS / f"{kind}-qr.png"
        browser.find_element(By.CSS_SELECTOR, ".lk-qr svg").screenshot(str(qr_png))
        scanned = subprocess.run(["zbarimg", "--quiet", "--raw", str(qr_png)], capture_output=True, text=True).stdout.strip()
        assert scanned.startswith("otpauth://totp/") and f"secret={secret}&" in scanned, scanned
        codes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
        assert len(codes) == 10
        totp = pyotp.TOTP(secret)
        agent.fill("new_password", PASSWORD)
        agent.fill("confirm_password", PASSWORD)
        agent.fill("code", totp.now())
        agent.click("Finish setting up")
        assert "Your staff account is ready." in agent.land(BASE, "02-enrolled")

        # Log out and back in, from the keyboard.
        browser.find_element(By.CSS_SELECTOR, "form[action$='/admin/logout'] button").click()
        agent.land(BASE + "/login", "03-login")
        browser.find_element(By.ID, "email").send_keys(f"sam.{kind}@example.com", Keys.TAB, PASSWORD, Keys.TAB,
                                                        totp.at(time.time() + 30), Keys.ENTER)
        agent.land(BASE, "04-people")

        # Search, open the record.
        agent.fill("q", "LOVELACE")
        browser.find_element(By.ID, "q").send_keys(Keys.ENTER)
        agent.land(BASE + "/people", "05-search")

        # Bulk "send password reset" from the results, after its confirmation step.
        browser.find_element(By.CSS_SELECTOR, "input[name=ids]").click()
        agent.click("Send password reset to selected")
        agent.land(BASE + "/people/bulk-reset", "05a-bulk-confirm")
        agent.click("Send emails")
        assert "Reset password emails sent." in agent.land(BASE + "/people", "05b-bulk-sent")
        wait_mail(site, address)
        browser.get(server.url + BASE + "/people?q=lovelace")
        agent.land(BASE + "/people", "05c-search-again")
        browser.find_element(By.LINK_TEXT, address).click()
        agent.land(BASE + "/people/", "06-record")

        # Reset Password → Send email → the status message and the link the customer got.
        agent.click("Reset password")
        agent.land(BASE + "/people/", "07-confirm-reset")
        agent.click("Send email")
        body = agent.land(BASE + "/people/", "08-reset-sent")
        assert "Reset password email sent." in body and "Reset password email sent" in browser.find_element(By.ID, "reset-status").text
        shown = browser.find_element(By.ID, "reset-link").get_attribute("value")
        token = mail.reset_token(wait_mail(site, address)[0], server.url)
        assert shown == f"{server.url}/cgi-bin/reset?token={token}", shown
        browser.find_element(By.CSS_SELECTOR, "[data-copy='reset-link']").click()
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "copy-status").text == "Link copied.")
        record_url = browser.current_url.split("?")[0]

        # Create a customer: the exact message and the link.
        browser.get(server.url + BASE + "/people/new")
        agent.land(BASE + "/people/new", "09-new")
        agent.fill("email", f"new.{kind}@example.com")
        agent.fill("name", "New Customer")
        Select(browser.find_element(By.ID, "offer")).select_by_value("members")
        agent.click("Add person")
        body = agent.land(BASE + "/people/", "10-created")
        assert "Account successfully created and reset password email sent." in body
        new_link = browser.find_element(By.ID, "reset-link").get_attribute("value")
        assert mail.reset_token(wait_mail(site, f"new.{kind}@example.com")[0], server.url) in new_link

        # A temporary password: the customer is sent to the account page at login.
        browser.get(record_url + "/set-password")
        agent.land(BASE + "/people/", "11-set-password")
        agent.fill("new_password", "temporary pass 33")
        agent.fill("confirm_password", "temporary pass 33")
        agent.click("Save password")
        assert "Temporary password set" in agent.land(BASE + "/people/", "12-temporary-set")
        login = server.post("/cgi-bin/login", {"email": address, "password": "temporary pass 33", "locale": "en"})
        assert login.headers["location"] == server.url + "/account.must-change.html"

        # A failed message, retried from the record once the transport works again.
        failing = site.top / "down.sh"
        failing.write_text("#!/bin/sh\ncat >/dev/null\necho 'relay down' >&2\nexit 75\n")
        failing.chmod(0o755)
        transport = site.read_config()["mail"]["transport"]
        site.update_config(mail={"transport": f"sendmail:{failing}"})
        admin_ok(site, "welcome", "resend", address)
        site.update_config(mail={"transport": transport})
        browser.get(record_url)
        agent.land(BASE + "/people/", "13-failed-mail")
        agent.click("Retry")
        assert "Message sent." in agent.land(BASE + "/people/", "14-retried")
        assert site_sql(site, "SELECT count(*) AS n FROM mail WHERE status = 'failed'") == [{"n": 0}]

        # Grant and revoke.
        admin_ok(site, "offer", "add", "extra", "--name", "Extra")
        browser.get(record_url + "/grant")
        agent.land(BASE + "/people/", "15-grant")
        Select(browser.find_element(By.ID, "offer")).select_by_value("extra")
        agent.click("Grant access")
        assert "Access granted." in agent.land(BASE + "/people/", "16-granted")
        agent.click("Revoke access")
        agent.land(BASE + "/people/", "17-revoke")
        Select(browser.find_element(By.ID, "offer")).select_by_value("extra")
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        assert "Access revoked." in agent.land(BASE + "/people/", "18-revoked")

        # Disable.
        agent.click("Disable login")
        agent.land(BASE + "/people/", "19-disable")
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        assert "Login closed" in agent.land(BASE + "/people/", "20-disabled")
        refused = server.post("/cgi-bin/login", {"email": address, "password": "temporary pass 33", "locale": "en"})
        assert refused.headers["location"] == server.url + "/login.invalid-login.html"

        # The other pages, for their accessibility and console checks.
        for path, shot in (("/mail", "21-mail"), ("/audit", "22-audit")):
            browser.get(server.url + BASE + path)
            agent.land(BASE + path, shot)
        audit = site_sql(site, f"SELECT DISTINCT actor FROM audit WHERE subject = '{address}'")
        assert {"actor": f"staff:sam.{kind}@example.com"} in audit

        # An owner's pages: staff (with a lost phone's reset behind its confirmation) and offers.
        owner = enrol(server, f"olive.{kind}@example.com", "owner")
        browser.delete_all_cookies()
        browser.add_cookie({"name": "lk_staff", "value": owner.cookie, "path": "/", "httpOnly": True, "sameSite": "Strict"})
        for path, shot in (("/staff", "23-staff"), ("/offers", "24-offers")):
            browser.get(server.url + BASE + path)
            agent.land(BASE + path, shot)
        browser.get(server.url + BASE + "/staff")
        browser.find_element(By.XPATH, f"//tr[contains(., 'sam.{kind}@example.com')]//a[normalize-space()='Reset second factor']").click()
        agent.land(BASE + "/staff/", "25-reset-2fa")
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        assert "Second factor reset" in agent.land(BASE + "/staff", "26-2fa-reset")
        reset = site_sql(site, f"SELECT enrolled_at FROM staff WHERE email = 'sam.{kind}@example.com'")
        assert reset == [{"enrolled_at": None}]
        assert enrolment_link(mail.text(wait_mail(site, f"sam.{kind}@example.com", 2)[-1]))
