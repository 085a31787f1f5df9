"""Faults underneath the product: mail that hangs or cannot start, a database that is read-only,
missing or on a full disk, a CGI killed in the middle of a password change, and two password
changes racing on one link.

The web-facing faults run against a real Apache (fixtures `make_site`, `apache`). The kill and
race tests start cgi-bin/reset directly in a CGI environment (lkserver.run_cgi/start_cgi, as
www-data), because only then can the test choose the moment the process dies.

After every fault the database must be sound (`PRAGMA integrity_check` = ok) and each person
consistent: a password change is all there (new hash, link used) or not there at all.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from lkserver import (
    CGIAnswer, add_customer as shared_add_customer, admin_ok, integrity_check, poll, run_cgi, site_sql, start_cgi, verifies, wait_site_idle, web_user_kwargs,
)
import maildir as mail

CUSTOMER = "ann.customer@example.com"
PASSWORD = "old-password-1"
NEW_PASSWORD = "brand new pass phrase 2"
OFFER = "gold"
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_-]{43})")


# --- helpers ------------------------------------------------------------------------------------------
admin = admin_ok


def add_customer(site, address=CUSTOMER, password=PASSWORD):
    shared_add_customer(site, address, password, OFFER)


def issue_token(site, address=CUSTOMER) -> str:
    return TOKEN_RE.search(admin(site, "user", "reset", address).stdout).group(1)


def person(site, address=CUSTOMER) -> dict:
    rows = site_sql(site, f"SELECT id, password_hash FROM person WHERE email = '{address}'")
    assert len(rows) == 1, rows
    return rows[0]


def reset_form(password: str, confirm: str | None = None) -> bytes:
    return urllib.parse.urlencode({"new_password": password, "confirm_password": confirm or password,
                                   "locale": "en"}).encode()


def http_reset(server, token, password):
    return server.post("/cgi-bin/reset", {"new_password": password, "confirm_password": password, "locale": "en"},
                       headers={"Cookie": f"lk_reset={token}"})


def http_login(server, address=CUSTOMER, password=PASSWORD):
    return server.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"})


def session_of(answer) -> str | None:
    found = re.search(r"lk_session=([A-Za-z0-9_-]{43})", answer.headers.get("set-cookie", ""))
    return found.group(1) if found else None


def assert_error_page(answer, status, site, what):
    assert answer.status == status, f"{what}: status {answer.status}, expected {status}: {answer.body[:200]!r}"
    assert str(status).encode() in answer.body, f"{what}: the page does not say {status}: {answer.body[:200]!r}"
    assert answer.headers.get("content-type", "").startswith("text/html"), f"{what}: {answer.headers}"
    assert site.read_config()["site_name"].encode() in answer.body, f"{what}: not the site's branded page"


# =========================================================================================================
# Mail transport faults
# =========================================================================================================
HANGING_SENDMAIL = "#!/bin/sh\necho $$ >> {pids}\nexec sleep 30\n"
WORKING_SENDMAIL = """#!/bin/sh
name="{outbox}/$(date +%s%N).$$"
cat > "{outbox}/.$$.tmp" && mv "{outbox}/.$$.tmp" "$name.eml"
"""


def sendmail_scripts(site):
    tools = site.dir / "bin"
    tools.mkdir(mode=0o755, exist_ok=True)
    outbox = site.top / "outbox"
    outbox.mkdir(mode=0o777)
    outbox.chmod(0o777)  # the web worker (www-data) and the admin (root) both deliver
    hanging, working = tools / "hanging-sendmail", tools / "sendmail"
    pids = site.top / "hanging.pids"
    pids.touch()
    pids.chmod(0o666)
    hanging.write_text(HANGING_SENDMAIL.format(pids=pids))
    working.write_text(WORKING_SENDMAIL.format(outbox=outbox))
    for script in (hanging, working):
        script.chmod(0o755)
    return hanging, working, outbox


def mail_rows(site):
    return site_sql(site, "SELECT id, status, last_error, next_attempt_at FROM mail ORDER BY id")


def forgot_fails_then_mail_deliver_sends(server, broken_transport, working, outbox, error_pattern, fail_within):
    """Forgot with a broken transport: a prompt, unchanged answer; the message ends `failed` with an
    error matching `error_pattern`; once the transport works, `latchkey mail deliver` sends it."""
    site = server.site
    site.update_config(mail={"transport": broken_transport})
    started = time.monotonic()
    answer = server.post("/cgi-bin/forgot", {"email": CUSTOMER, "locale": "en"})
    elapsed = time.monotonic() - started
    assert answer.status == 303 and answer.headers["location"] == f"{server.url}/forgot-sent.html", answer
    assert elapsed < 1.0, f"the forgot answer waited on the mail transport: {elapsed:.2f}s"
    unknown = server.post("/cgi-bin/forgot", {"email": "nobody@example.com", "locale": "en"})
    assert (unknown.status, unknown.headers["location"], unknown.body) == \
        (answer.status, answer.headers["location"], answer.body), "the answer must not depend on the mail outcome"

    rows = poll(lambda: mail_rows(site), lambda r: r and r[-1]["status"] == "failed", timeout=fail_within,
                what="the message to be marked failed")
    entry = rows[-1]
    assert re.search(error_pattern, entry["last_error"], re.I), f"error {entry['last_error']!r} !~ {error_pattern}"
    wait_site_idle(site)
    assert mail.Mailbox(outbox).count() == 0

    site.update_config(mail={"transport": f"sendmail:{working}"})
    delay = entry["next_attempt_at"] + 1.0 - time.time()
    if delay > 0:
        time.sleep(delay)
    result = admin(site, "mail", "deliver")
    assert re.search(r"\b1 sent\b", result.stdout), result.stdout
    delivered = mail.Mailbox(outbox).messages()
    assert len(delivered) == 1 and mail.recipient(delivered[0]) == CUSTOMER, delivered
    assert mail.reset_token(delivered[0], server.url)
    assert site_sql(site, f"SELECT status FROM mail WHERE id = {entry['id']}")[0]["status"] == "sent"


def test_hanging_sendmail_is_stopped_at_mail_timeout_recorded_failed_and_delivered_later(make_site, apache):
    site = make_site(_build=False, mail={"timeout": "2s", "retry_after": "1s"})
    server = apache(site)
    add_customer(site)
    hanging, working, outbox = sendmail_scripts(site)
    forgot_fails_then_mail_deliver_sends(server, f"sendmail:{hanging}", working, outbox,
                                         r"(time|within 2s)", fail_within=5.5)
    pids = [int(p) for p in (site.top / "hanging.pids").read_text().split()]
    assert pids, "the hanging transport never ran"
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, f"the hanging transport was left running past mail.timeout: {alive}"


def test_missing_sendmail_binary_is_recorded_failed_and_delivered_later(make_site, apache):
    site = make_site(_build=False, mail={"retry_after": "1s"})
    server = apache(site)
    add_customer(site)
    _, working, outbox = sendmail_scripts(site)
    forgot_fails_then_mail_deliver_sends(server, "sendmail:/nonexistent", working, outbox,
                                         r"/nonexistent.*(no such file|cannot|not found)", fail_within=5.0)


# =========================================================================================================
# Database faults
# =========================================================================================================
def touch_due_session(site, server):
    """A live session whose last_seen_at is old enough that checking it must write."""
    value = session_of(http_login(server))
    assert value, "setup: login failed"
    site_sql(site, "UPDATE session SET last_seen_at = last_seen_at - 600")
    return value


def test_read_only_database_answers_503_writes_nothing_and_recovers(make_site, apache):
    site = make_site(_build=False)
    server = apache(site)
    add_customer(site)
    token = issue_token(site)
    fresh_session = session_of(http_login(server))
    due_session = touch_due_session(site, server)
    wait_site_idle(site)
    before = person(site)
    sessions_before = site_sql(site, "SELECT count(*) AS n FROM session")[0]["n"]

    db = site.var / "latchkey.sqlite3"
    modes = {db: db.stat().st_mode & 0o777, site.var: site.var.stat().st_mode & 0o777}
    try:
        db.chmod(0o444)
        site.var.chmod(0o555)
        assert_error_page(http_login(server), 503, site, "login (right password) on a read-only database")
        assert_error_page(http_reset(server, token, NEW_PASSWORD), 503, site, "reset POST on a read-only database")
        checked = server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={due_session}"})
        assert_error_page(checked, 503, site, "session GET that must record its use, on a read-only database")
        # A session used a moment ago needs no write; the check must still never break (500).
        fresh = server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={fresh_session}"})
        assert fresh.status in (204, 503), f"fresh session on a read-only database: {fresh.status}"
        wait_site_idle(site)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)

    assert integrity_check(site) == "ok"
    after = person(site)
    assert after["password_hash"] == before["password_hash"], "the password changed although the answer was 503"
    assert site_sql(site, "SELECT used_at FROM reset_token")[0]["used_at"] is None, "the link was spent"
    assert site_sql(site, "SELECT count(*) AS n FROM session")[0]["n"] == sessions_before

    # Fixed: normal service.
    assert server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={due_session}"}).status == 204
    login = http_login(server)
    assert login.status == 303 and login.headers["location"] == f"{server.url}/members/", login
    done = http_reset(server, token, NEW_PASSWORD)
    assert done.status == 303 and done.headers["location"] == f"{server.url}/reset-done.html", done
    assert verifies(person(site)["password_hash"], NEW_PASSWORD)


def test_missing_database_answers_503_and_is_not_recreated_empty(make_site, apache):
    site = make_site(_build=False)
    server = apache(site)
    add_customer(site)
    token = issue_token(site)
    session = session_of(http_login(server))
    wait_site_idle(site)

    files = sorted(site.var.glob("latchkey.sqlite3*"))
    away = site.top / "db-away"
    away.mkdir()
    try:
        for f in files:
            f.rename(away / f.name)
        assert_error_page(http_login(server), 503, site, "login with the database missing")
        assert_error_page(http_reset(server, token, NEW_PASSWORD), 503, site, "reset POST with the database missing")
        assert_error_page(server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={session}"}), 503, site,
                          "session GET with the database missing")
        visit = server.get(f"/cgi-bin/reset?token={token}")
        assert_error_page(visit, 503, site, "reset GET with the database missing")
        forgot = server.post("/cgi-bin/forgot", {"email": CUSTOMER, "locale": "en"})
        assert forgot.status == 303 and forgot.headers["location"] == f"{server.url}/forgot-sent.html", forgot
        wait_site_idle(site)
        created = sorted(p.name for p in site.var.glob("latchkey.sqlite3*"))
        assert not created, f"a CGI or its worker created a database in place of the missing one: {created}"
    finally:
        for f in files:
            if (away / f.name).exists():
                (away / f.name).rename(f)

    assert integrity_check(site) == "ok"
    assert server.get("/cgi-bin/session", headers={"Cookie": f"lk_session={session}"}).status == 204
    login = http_login(server)
    assert login.status == 303 and login.headers["location"] == f"{server.url}/members/", login
    done = http_reset(server, token, NEW_PASSWORD)
    assert done.status == 303 and done.headers["location"] == f"{server.url}/reset-done.html", done


def _mount_tmpfs(path: Path, size: str) -> None:
    user = web_user_kwargs()
    owner = f",uid={user['user']},gid={user['group']}" if user else ""
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755{owner}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {result.stderr.strip()}")


def test_full_disk_reset_answers_5xx_changes_nothing_and_works_once_space_is_freed(make_site, apache):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    site = make_site(_build=False)
    server = apache(site)
    add_customer(site)
    token = issue_token(site)
    wait_site_idle(site)
    # Move var/ onto a 4 MiB tmpfs, with the WAL checkpointed away so any write must grow a file.
    site_sql(site, "PRAGMA wal_checkpoint(TRUNCATE)")
    saved = site.top / "var-saved"
    shutil.copytree(site.var, saved, symlinks=True)
    _mount_tmpfs(site.var, "4m")
    filler = site.var / "filler"
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", str(site.var)], check=True)
        site.chown_var()
        before = person(site)
        # A CGI opens the database (and leaves its -wal and -shm in place) before the disk fills:
        # what fails afterwards is SQLite growing the log, not making its shared-memory file.
        assert server.get(f"/cgi-bin/reset?token={token}").headers.get("location") == f"{server.url}/reset.html"
        dd = subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4096"], capture_output=True, text=True)
        assert "No space left" in dd.stderr, f"dd should have filled the tmpfs: {dd.stderr}"

        answer = http_reset(server, token, NEW_PASSWORD)
        assert 500 <= answer.status <= 599, f"reset POST on a full disk: {answer.status} {answer.headers}"
        assert str(answer.status).encode() in answer.body, answer.body[:200]
        assert answer.status == 503, f"a full disk is the database being unavailable (503), got {answer.status}"
        assert re.search(r"full|disk|space|I/O", server.error_log(), re.I), server.error_log()[-800:]
        wait_site_idle(site)
        assert integrity_check(site) == "ok"
        assert person(site)["password_hash"] == before["password_hash"], "the password changed on a full disk"
        tokens = site_sql(site, "SELECT used_at, voided_at FROM reset_token")
        assert tokens[0]["used_at"] is None and tokens[0]["voided_at"] is None, tokens

        filler.unlink()
        done = http_reset(server, token, NEW_PASSWORD)
        assert done.status == 303 and done.headers["location"] == f"{server.url}/reset-done.html", done
        assert verifies(person(site)["password_hash"], NEW_PASSWORD)
        wait_site_idle(site)
        assert integrity_check(site) == "ok"
    finally:
        wait_site_idle(site)
        if subprocess.run(["umount", str(site.var)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(site.var)], capture_output=True)


# =========================================================================================================
# A reset killed at random points; two resets racing
# =========================================================================================================
def token_row(site, token_id):
    return site_sql(site, f"SELECT used_at, voided_at FROM reset_token WHERE id = {token_id}")[0]


def latest_token_id(site):
    return site_sql(site, "SELECT max(id) AS id FROM reset_token")[0]["id"]


def test_reset_killed_at_random_points_leaves_old_or_new_password_never_half(make_site):
    site = make_site()
    add_customer(site)
    current = PASSWORD

    # One full run first: the path works, and its duration sets the range of kill times.
    token = issue_token(site)
    started = time.monotonic()
    full = run_cgi(site, "reset", body=reset_form("first new password 0"), cookie=f"lk_reset={token}")
    duration = time.monotonic() - started
    assert full.status == 303 and full.headers["location"].endswith("/reset-done.html"), full
    current = "first new password 0"
    wait_site_idle(site)

    rng = random.Random(int(os.environ.get("LATCHKEY_KILL_SEED", time.time_ns() % 100000)))
    limit = max(0.04, duration * 1.25)
    outcomes = {"old": 0, "new": 0}
    token, token_id = issue_token(site), latest_token_id(site)
    deadline = time.monotonic() + 20.0
    for i in range(40):
        if time.monotonic() > deadline:
            break
        new = f"killed run {i:03d} pw"
        body = reset_form(new)
        proc = start_cgi(site, "reset", "POST", body, cookie=f"lk_reset={token}")
        proc.stdin.write(body)
        proc.stdin.close()
        # Every other kill aims at the end of the hash, where the transaction runs.
        delay = rng.uniform(0, limit) if i % 2 == 0 else rng.uniform(0.8 * duration, 1.05 * duration)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        wait_site_idle(site)

        where = f"iteration {i}, killed after {delay * 1000:.1f} ms (full run {duration * 1000:.0f} ms)"
        check = integrity_check(site)
        assert check == "ok", f"{where}: integrity_check says {check!r}"
        stored = person(site)["password_hash"]
        row = token_row(site, token_id)
        if verifies(stored, new):
            assert row["used_at"] is not None, f"{where}: new password stored but the link is still unused: {row}"
            outcomes["new"] += 1
            current = new
            token, token_id = issue_token(site), latest_token_id(site)
        else:
            assert verifies(stored, current), f"{where}: the stored hash matches neither the old nor the new password"
            assert row["used_at"] is None and row["voided_at"] is None, \
                f"{where}: old password kept but the link was spent or voided: {row}"
            outcomes["old"] += 1
    assert sum(outcomes.values()) >= 10, f"too few iterations in the time allowed: {outcomes}"
    print(f"kill outcomes: {outcomes}")


def test_two_resets_racing_on_one_link_exactly_one_wins(make_site):
    site = make_site()
    add_customer(site)
    for round_ in range(4):
        token = issue_token(site)
        wait_site_idle(site)
        passwords = [f"racer A round {round_}", f"racer B round {round_}"]
        bodies = [reset_form(p) for p in passwords]
        procs = [start_cgi(site, "reset", "POST", b, cookie=f"lk_reset={token}") for b in bodies]
        time.sleep(0.02)  # both are up and waiting for their body
        for proc, body in zip(procs, bodies):
            proc.stdin.write(body)
            proc.stdin.flush()
        results = [proc.communicate(timeout=30) for proc in procs]
        answers = [CGIAnswer(out, err, proc.returncode) for (out, err), proc in zip(results, procs)]
        wait_site_idle(site)

        places = [a.headers.get("location", f"status {a.status}").rsplit("/", 1)[-1] for a in answers]
        assert all(a.status == 303 for a in answers), f"round {round_}: {answers}"
        assert sorted(places) == ["expired.html", "reset-done.html"], f"round {round_}: answers went to {places}"
        winner = places.index("reset-done.html")
        stored = person(site)["password_hash"]
        matches = [verifies(stored, p) for p in passwords]
        assert matches.count(True) == 1, f"round {round_}: the stored hash verifies {matches.count(True)} of the two"
        assert matches[winner], f"round {round_}: the stored password is the loser's"
        assert integrity_check(site) == "ok"
