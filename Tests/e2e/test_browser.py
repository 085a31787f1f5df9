"""The customer's journey in a real browser: headless Debian chromium driven by Selenium, against
a private Apache on loopback, mail read from the site's Maildir.

One site, one server and one browser for the module (a fresh cookie jar per test). On every page
a test lands on, and again at its end, the browser's console must hold no errors (CSP
violations, failed loads — a missing /favicon.ico among them — script errors). A screenshot of
each step goes to artifacts/browser/.

Needs: chromium, chromium-driver (/usr/bin/chromedriver), and `pip install selenium`.
"""
from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path

import pytest

from selenium import webdriver  # noqa: E402  (pip install selenium)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from lkserver import ROOT  # noqa: E402
from servers import running  # noqa: E402
from chrome import chromium  # noqa: E402

HERE = Path(__file__).resolve().parent
SHOTS = ROOT / "artifacts" / "browser"

PASSWORD = "first password 1"
NEW_PASSWORD = "second password 2"
THIRD_PASSWORD = "third password 3"
MEMBERS_TEXT = "Welcome to the members area"


import maildir as mail  # noqa: E402  (Tests/e2e/maildir.py)



# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", {"throttle": {"forgot_per_ip": {"count": 100000, "window": "1h"},
                                         "login_failures_per_ip": {"count": 100000, "window": "1h"}}}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _console_errors(driver) -> list[dict]:
    errors = []
    for entry in driver.get_log("browser"):
        if entry.get("level") not in ("SEVERE", "ERROR"):
            continue
        errors.append(entry)
    return errors


@pytest.fixture
def driver(browser, server):
    """The shared browser with an empty cookie jar and console. Each test ends with
    `assert_quiet_console(driver)`."""
    browser.get(server.url + "/login.html")
    browser.delete_all_cookies()
    browser.get_log("browser")  # drop what came before
    yield browser
    browser.get_log("browser")


def assert_quiet_console(driver, where: str = "") -> None:
    errors = _console_errors(driver)
    assert not errors, f"errors in the browser console{' on ' + where if where else ''}: {errors}"


_counter = iter(range(1, 10**6))


def customer(server, password=PASSWORD) -> str:
    site = server.site
    address = f"browser{next(_counter)}@example.com"
    for args, stdin in ((("user", "add", address, "--name", "Bea Browser", "--no-email", "--offer", "members"), None),
                        (("user", "set-password", address), password + "\n")):
        result = site.latchkey(*args, input=stdin)
        site.chown_var()
        assert result.returncode == 0, result.stderr
    return address


# --- helpers ------------------------------------------------------------------------------------
def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def path_of(driver) -> str:
    return urllib.parse.urlsplit(driver.current_url).path


def wait_for_path(driver, path: str, timeout: float = 6.0) -> None:
    """Waits until the browser shows `path`; fails at once on one of the site's error pages."""
    def landed(d):
        if path_of(d) == path:
            return True
        try:
            if "Error code:" in d.find_element(By.TAG_NAME, "body").text:
                return "error page"
        except Exception:
            pass
        return False
    try:
        outcome = WebDriverWait(driver, timeout).until(landed)
    except Exception:
        outcome = "timeout"
    if outcome is not True:
        raise AssertionError(f"expected to land on {path}, the browser is at {driver.current_url} ({outcome})\n"
                             f"{body_text(driver)[:500]}")
    # The page's own loads (stylesheets, the icon) have run once the document is complete.
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert_quiet_console(driver, path)


def fill(driver, field_id: str, value: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def submit(driver, form_action: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"form[action='{form_action}'] button[type='submit']").click()


def body_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for_mail_to(server, address, count=1, timeout=10.0):
    box = mail.Mailbox(server.site.var / "mail")
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in box.messages() if mail.recipient(m) == address]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no mail to {address} within {timeout}s"
        time.sleep(0.05)


# --- the journey --------------------------------------------------------------------------------
def test_whole_customer_journey(driver, server):
    address = customer(server)

    driver.get(server.url + "/login.html")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    shot(driver, "01-login")
    driver.find_element(By.LINK_TEXT, "Forgot password?").click()
    wait_for_path(driver, "/forgot.html")
    shot(driver, "02-forgot")

    fill(driver, "email", address)
    submit(driver, "/cgi-bin/forgot")
    wait_for_path(driver, "/forgot-sent.html")
    assert "spam" in body_text(driver).lower() or "junk" in body_text(driver).lower()
    shot(driver, "03-forgot-sent")

    msg = wait_for_mail_to(server, address)[0]
    token = mail.reset_token(msg, server.url)
    driver.get(f"{server.url}/cgi-bin/reset?token={token}")
    wait_for_path(driver, "/reset.html")
    assert token not in driver.current_url, "the token must not stay in the page's URL"
    shot(driver, "04-reset")

    fill(driver, "new_password", NEW_PASSWORD)
    fill(driver, "confirm_password", NEW_PASSWORD)
    submit(driver, "/cgi-bin/reset")
    wait_for_path(driver, "/reset-done.html")
    assert driver.get_cookie("lk_session") is None, "a reset must not log the person in"
    shot(driver, "05-reset-done")

    # From reset-done to the login page by its own link, then in with the new password.
    links = [a for a in driver.find_elements(By.CSS_SELECTOR, "main a")
             if urllib.parse.urlsplit(a.get_attribute("href")).path in ("/login.html", "/")]
    assert links, "reset-done.html should link to the login page"
    links[0].click()
    wait_for_path(driver, "/login.html")
    fill(driver, "email", address)
    fill(driver, "password", NEW_PASSWORD)
    submit(driver, "/cgi-bin/login")
    wait_for_path(driver, "/members/")
    assert MEMBERS_TEXT in body_text(driver)
    session = driver.get_cookie("lk_session")
    assert session and session.get("httpOnly") is True, session
    shot(driver, "06-members")

    # The account page, reached from the members area.
    driver.find_element(By.CSS_SELECTOR, "a[href='/account.html']").click()
    wait_for_path(driver, "/account.html")
    shot(driver, "07-account")
    fill(driver, "current_password", NEW_PASSWORD)
    fill(driver, "new_password", THIRD_PASSWORD)
    fill(driver, "confirm_password", THIRD_PASSWORD)
    submit(driver, "/cgi-bin/account")
    wait_for_path(driver, "/account-done.html")
    shot(driver, "08-account-done")

    # Still logged in (with the fresh session) → members → log out there.
    driver.get(server.url + "/members/")
    wait_for_path(driver, "/members/")
    assert MEMBERS_TEXT in body_text(driver)
    driver.find_element(By.CSS_SELECTOR, "form[action='/cgi-bin/logout'] button").click()
    wait_for_path(driver, "/login.signed-out.html")
    shot(driver, "09-signed-out")

    driver.get(server.url + "/members/")
    wait_for_path(driver, "/login.session-expired.html")
    assert MEMBERS_TEXT not in body_text(driver)
    shot(driver, "10-members-after-logout")
    assert_quiet_console(driver)


def test_customer_without_access_lands_on_the_account_page_with_whom_to_write(driver, server):
    site = server.site
    address = f"noaccess{next(_counter)}@example.com"
    for args, stdin in ((("user", "add", address, "--no-email"), None), (("user", "set-password", address), PASSWORD + "\n")):
        result = site.latchkey(*args, input=stdin)
        site.chown_var()
        assert result.returncode == 0, result.stderr
    driver.get(server.url + "/login.html")
    fill(driver, "email", address)
    fill(driver, "password", PASSWORD)
    submit(driver, "/cgi-bin/login")
    wait_for_path(driver, "/account.no-access.html")
    message = driver.find_element(By.CSS_SELECTOR, "[role='status']").text
    assert "have access to the members area right now" in message and "help@example.com" in message, message
    shot(driver, "14-no-access")
    driver.get(server.url + "/members/")
    wait_for_path(driver, "/account.no-access.html")
    assert MEMBERS_TEXT not in body_text(driver)
    assert_quiet_console(driver)


def test_logout_button_on_the_account_page(driver, server):
    address = customer(server)
    driver.get(server.url + "/login.html")
    fill(driver, "email", address)
    fill(driver, "password", PASSWORD)
    submit(driver, "/cgi-bin/login")
    wait_for_path(driver, "/members/")
    driver.get(server.url + "/account.html")
    driver.find_element(By.CSS_SELECTOR, "form[action='/cgi-bin/logout'] button").click()
    wait_for_path(driver, "/login.signed-out.html")
    driver.get(server.url + "/members/")
    wait_for_path(driver, "/login.session-expired.html")
    assert_quiet_console(driver)


def test_expired_link_offers_a_working_way_to_ask_again(driver, server):
    address = customer(server)
    driver.get(f"{server.url}/cgi-bin/reset?token={'A' * 43}")
    wait_for_path(driver, "/expired.html")
    assert "expired" in body_text(driver).lower()
    shot(driver, "11-expired")
    driver.find_element(By.CSS_SELECTOR, "main a[href$='forgot.html']").click()
    wait_for_path(driver, "/forgot.html")
    fill(driver, "email", address)
    submit(driver, "/cgi-bin/forgot")
    wait_for_path(driver, "/forgot-sent.html")
    token = mail.reset_token(wait_for_mail_to(server, address)[0], server.url)
    driver.get(f"{server.url}/cgi-bin/reset?token={token}")
    wait_for_path(driver, "/reset.html")
    assert_quiet_console(driver)


def test_wrong_password_shows_the_message(driver, server):
    address = customer(server)
    driver.get(server.url + "/login.html")
    fill(driver, "email", address)
    fill(driver, "password", "not my password")
    submit(driver, "/cgi-bin/login")
    wait_for_path(driver, "/login.invalid-login.html")
    message = driver.find_element(By.CSS_SELECTOR, "[role='alert']").text
    assert re.search(r"don[’']t match", message), message
    assert driver.get_cookie("lk_session") is None
    shot(driver, "12-invalid-login")
    # The form is right there to try again, and works.
    fill(driver, "email", address)
    fill(driver, "password", PASSWORD)
    submit(driver, "/cgi-bin/login")
    wait_for_path(driver, "/members/")
    assert_quiet_console(driver)


def test_keyboard_only_login_page_tab_order(driver, server):
    driver.get(server.url + "/login.html")  # a fresh load: focus starts at the top of the document
    assert driver.execute_script("return document.activeElement === document.body")

    def active():
        return driver.switch_to.active_element

    expected = [("input", "email"), ("input", "password"), ("button", None), ("a", "/forgot.html")]
    seen = []
    for tag, what in expected:
        webdriver.ActionChains(driver).send_keys(Keys.TAB).perform()
        element = active()
        name = element.tag_name.lower()
        ident = element.get_attribute("id") if name == "input" else \
            urllib.parse.urlsplit(element.get_attribute("href") or "").path if name == "a" else None
        seen.append((name, ident))
    assert seen == expected, f"Tab order from the top: {seen}"
    # The focused link shows a visible focus indicator.
    outline = driver.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        "return [s.outlineStyle, s.outlineWidth, s.boxShadow];")
    assert outline[0] != "none" or outline[2] != "none", f"no visible focus style on the link: {outline}"

    # Keyboard only, all the way in: Shift+Tab back to the email field, type, Enter submits.
    address = customer(server)
    for _ in range(3):
        webdriver.ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert active().get_attribute("id") == "email"
    webdriver.ActionChains(driver).send_keys(address, Keys.TAB, PASSWORD, Keys.ENTER).perform()
    wait_for_path(driver, "/members/")
    assert_quiet_console(driver)


def test_french_journey_pages_are_in_french(driver, server):
    address = customer(server)
    driver.get(server.url + "/fr/login.html")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    driver.find_element(By.CSS_SELECTOR, "main a[href$='forgot.html']").click()
    wait_for_path(driver, "/fr/forgot.html")
    fill(driver, "email", address)
    submit(driver, "/cgi-bin/forgot")
    wait_for_path(driver, "/fr/forgot-sent.html")
    msg = wait_for_mail_to(server, address)[0]
    assert msg["Content-Language"].strip() == "fr"
    shot(driver, "13-fr-forgot-sent")
    assert_quiet_console(driver)


def test_pages_work_with_javascript_disabled(server, browser):
    """The forms need no script: with JavaScript off, logging in still works."""
    address = customer(server)
    browser.delete_all_cookies()
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get(server.url + "/login.html")
        fill(browser, "email", address)
        fill(browser, "password", PASSWORD)
        submit(browser, "/cgi-bin/login")
        wait_for_path(browser, "/members/")
        assert MEMBERS_TEXT in body_text(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
        browser.get_log("browser")


PAGES = ["login", "forgot", "forgot-sent", "reset", "reset-done", "expired", "account", "account-done",
         "login.invalid-login", "error-404"]


def test_every_page_loads_without_console_errors(driver, server):
    """No CSP violation, failed load or script error on any page, in either language."""
    for locale in ("", "/fr"):
        for page in PAGES:
            driver.get(f"{server.url}{locale}/{page}.html")
            assert driver.find_element(By.TAG_NAME, "h1").text.strip(), f"{locale}/{page}.html has no heading"
            errors = _console_errors(driver)
            assert not errors, f"{locale}/{page}.html: {errors}"
            sheets = driver.execute_script("return document.styleSheets.length")
            assert sheets >= 1, f"{locale}/{page}.html loaded no stylesheet"
