"""`latchkey doctor`: a clean deployment passes; each planted fault is named with its fix.

Doctor prints `ok       WHAT` for each passed check, `problem  WHAT` + `  fix:   COMMAND` for each
failed one, then `All N checks passed.` (exit 0) or `error: N problem(s) found` (exit 1).
The faults planted here follow what DoctorCommand checks: the key (present, 0600, owned by the
web user), the database folder (writable by the web user), the database (present), nothing
secret inside the document root, built pages, the CGI executables, the mail transport, and
with --url the live server (login page 200, session 401, forgot 405 on GET).
"""
from __future__ import annotations

import http.server
import os
import pwd
import re
import socket
import threading
from pathlib import Path

import pytest

from lkserver import CGI_DIR, served_tempdir
from servers import SERVER_KINDS, make_server

WEB_USER = "www-data"
CGIS = ("login", "logout", "forgot", "reset", "account", "session", "members", "admin", "api", "stripe", "confirm-email")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="planting ownership faults needs root")


def doctor(site, *args):
    return site.latchkey("doctor", *map(str, args))


def findings(result) -> list[tuple[str, str]]:
    """[(problem, fix)] from doctor's output."""
    lines = result.stdout.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("problem"):
            problem = line[len("problem"):].strip().removeprefix(":").strip()
            fix = ""
            if i + 1 < len(lines) and lines[i + 1].strip().startswith("fix:"):
                fix = lines[i + 1].strip()[len("fix:"):].strip()
            out.append((problem, fix))
    return out


def passed(result) -> list[str]:
    return [line[len("ok"):].strip() for line in result.stdout.splitlines() if line.startswith("ok")]


def assert_clean(result):
    assert result.returncode == 0, f"doctor found problems:\n{result.stdout}{result.stderr}"
    assert not findings(result), result.stdout
    match = re.search(r"^All (\d+) checks passed\.$", result.stdout, re.M)
    assert match, result.stdout
    assert int(match.group(1)) == len(passed(result)), result.stdout


def assert_problem(result, problem_part: str, fix_part: str):
    """Exit 1, the summary line, and one finding whose problem and fix contain these parts."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    count = len(findings(result))
    summary = f"error: {count} problem{'s' if count != 1 else ''} found"
    assert summary in result.stderr, f"{summary!r} not in stderr: {result.stderr!r}\n{result.stdout}"
    assert "checks passed" not in result.stdout
    for problem, fix in findings(result):
        if problem_part in problem and fix_part in fix:
            return problem, fix
    raise AssertionError(f"no finding with problem ~ {problem_part!r} and fix ~ {fix_part!r}:\n{result.stdout}")


def web_ids():
    entry = pwd.getpwnam(WEB_USER)
    return entry.pw_uid, entry.pw_gid


def dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.fixture
def site(make_site):
    return make_site()


def key_of(site) -> Path:
    return site.var / "secret.key"


# --- a clean deployment -------------------------------------------------------------------------
def test_clean_deployment_served_by_apache_passes(site, apache):
    server = apache(site)
    result = doctor(site, "--user", WEB_USER, "--cgi-dir", CGI_DIR, "--url", server.url + "/")
    assert_clean(result)
    checks = "\n".join(passed(result))
    for expected in ("key file is mode 0600", f"key file belongs to {WEB_USER}",
                     f"database folder writable by {WEB_USER}", "pages are built", "CGI session is executable",
                     "login page answers 200", "session endpoint answers 401", "forgot endpoint"):
        assert expected in checks, f"{expected!r} not among the passed checks:\n{checks}"
    # Doctor (run as root) must not leave root-owned files behind for the CGIs to trip on.
    uid, _ = web_ids()
    for path in site.var.rglob("*"):
        assert path.stat().st_uid == uid, f"{path} is owned by uid {path.stat().st_uid} after doctor"
    # The site still works after the check.
    assert server.get("/cgi-bin/session").status == 401


def test_url_without_trailing_slash_works_too(site, apache):
    server = apache(site)
    assert_clean(doctor(site, "--cgi-dir", CGI_DIR, "--url", server.url))


@pytest.mark.parametrize("kind", [k for k in SERVER_KINDS if k != "apache"])
def test_clean_deployment_served_by_other_servers_passes(site, kind):
    server = make_server(kind, site)
    try:
        server.start()
        assert_clean(doctor(site, "--cgi-dir", CGI_DIR, "--url", server.url + "/"))
    finally:
        server.cleanup()


def test_clean_site_without_url_passes(site):
    assert_clean(doctor(site, "--cgi-dir", CGI_DIR))


# --- the key ------------------------------------------------------------------------------------
def test_key_readable_by_others(site):
    key_of(site).chmod(0o644)
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "readable by others", "chmod 600")
    assert str(key_of(site)) in problem and fix == f"chmod 600 {key_of(site)}"
    assert "644" in problem


def test_key_owned_by_root(site):
    os.chown(key_of(site), 0, 0)
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), str(key_of(site)), f"chown {WEB_USER}")
    assert str(key_of(site)) in fix, fix


def test_key_missing(site):
    key_of(site).unlink()
    assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "missing", "latchkey init")


# --- the database -------------------------------------------------------------------------------
def test_database_folder_not_writable_by_the_web_user(site):
    os.chown(site.var, 0, 0)
    site.var.chmod(0o755)
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "not writable", "chown -R")
    assert str(site.var) in problem and fix == f"chown -R {WEB_USER}: {site.var}", (problem, fix)


def test_database_missing(site):
    for path in site.var.glob("latchkey.sqlite3*"):
        path.unlink()
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "database", "latchkey init")
    assert "missing" in problem


# --- the document root --------------------------------------------------------------------------
def test_secrets_inside_the_document_root(site):
    """output "." puts the database, key, config and templates inside the document root. (latchkey
    build refuses such a config; doctor must catch a deployment that got there anyway.)"""
    site.update_config(output=".")
    result = doctor(site, "--cgi-dir", CGI_DIR)
    for name in ("database", "key", "site config", "site source"):
        problem, fix = assert_problem(result, f"the {name} ", "move it out of")
        assert "inside the document root" in problem, problem
    assert_problem(result, "no pages", "latchkey build")


def test_database_and_key_inside_the_document_root(site):
    site.update_config(output="var")
    result = doctor(site, "--cgi-dir", CGI_DIR)
    assert_problem(result, "the database", "move it out of")
    assert_problem(result, "the key", "move it out of")


def test_pages_not_built(site):
    (site.public / "login.html").unlink()
    assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "no pages", "latchkey build")


# --- the CGIs -----------------------------------------------------------------------------------
@pytest.fixture
def partial_cgi_dir():
    folder = served_tempdir("latchkey-cgi-")
    for name in CGIS:
        if name == "session":
            continue  # missing
        if name == "members":
            (folder / name).write_bytes(b"#!/bin/sh\n")
            (folder / name).chmod(0o644)  # present but not executable
            continue
        (folder / name).symlink_to(CGI_DIR / name)
    yield folder
    import shutil
    shutil.rmtree(folder, ignore_errors=True)


def test_cgi_missing_or_not_executable(site, partial_cgi_dir):
    result = doctor(site, "--cgi-dir", partial_cgi_dir)
    problem, fix = assert_problem(result, f"{partial_cgi_dir}/session", "make build")
    assert "missing or not executable" in problem
    assert_problem(result, f"{partial_cgi_dir}/members", "make build")
    assert len(findings(result)) == 2, result.stdout
    assert "CGI login is executable" in passed(result)


# --- mail ---------------------------------------------------------------------------------------
def test_sendmail_program_missing(site):
    site.update_config(mail={"transport": "sendmail:/nonexistent/sendmail"})
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "/nonexistent/sendmail", "msmtp")
    assert "does not exist or is not executable" in problem


def test_sendmail_program_present_passes(site):
    site.update_config(mail={"transport": "sendmail:/bin/cat"})
    assert_clean(doctor(site, "--cgi-dir", CGI_DIR))


def test_maildir_not_writable_by_the_web_user(site):
    mail = site.var / "mail"
    mail.mkdir(exist_ok=True)
    os.chown(mail, 0, 0)
    mail.chmod(0o755)
    problem, fix = assert_problem(doctor(site, "--cgi-dir", CGI_DIR), "Maildir", "chown -R")
    assert str(mail) in problem and str(mail) in fix, (problem, fix)


# --- the live server ----------------------------------------------------------------------------
def test_url_where_nothing_listens(site):
    url = f"http://127.0.0.1:{dead_port()}/"
    result = doctor(site, "--cgi-dir", CGI_DIR, "--url", url)
    problem, fix = assert_problem(result, "login.html answered nothing", "latchkey webserver")
    assert url in problem
    assert_problem(result, "session answered nothing", "latchkey webserver")
    assert_problem(result, "forgot answered nothing", "latchkey webserver")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_url_of_a_server_that_does_not_run_the_cgis(site):
    """A plain static server over the pages: the login page is there, the endpoints are not."""
    handler = lambda *a, **kw: _Quiet(*a, directory=str(site.public), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        result = doctor(site, "--cgi-dir", CGI_DIR, "--url", url)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert "login page answers 200" in passed(result), result.stdout
    problem, _ = assert_problem(result, "cgi-bin/session answered 404 instead of 401", "latchkey webserver")
    assert_problem(result, "cgi-bin/forgot answered", "latchkey webserver")


# --- everything at once, and bad invocations ----------------------------------------------------
def test_several_faults_are_all_reported_and_counted(site):
    key_of(site).chmod(0o640)
    os.chown(key_of(site), 0, 0)
    site.update_config(mail={"transport": "sendmail:/nonexistent/sendmail"})
    result = doctor(site, "--cgi-dir", CGI_DIR, "--url", f"http://127.0.0.1:{dead_port()}/")
    assert len(findings(result)) == 6, result.stdout
    assert_problem(result, "readable by others", "chmod 600")
    assert "error: 6 problems found" in result.stderr, result.stderr


def test_broken_config_is_a_problem_not_a_crash(site):
    site.config.write_text("{ not json", encoding="utf-8")
    result = doctor(site)
    assert result.returncode == 1, result
    assert "problem" in result.stdout and "config does not load" in result.stdout, result.stdout
    assert "fix:" in result.stdout
    assert "error: 1 problem found" in result.stderr


def test_unknown_user_is_refused(site):
    result = doctor(site, "--user", "no-such-user-here")
    assert result.returncode != 0
    assert "no-such-user-here" in result.stderr and "\n" == result.stderr[-1:] and result.stderr.count("\n") == 1


def test_unknown_option_is_refused(site):
    result = doctor(site, "--frobnicate", "1")
    assert result.returncode != 0 and result.stderr.strip(), result
