"""Under load: 64 concurrent clients for a bounded time, mixed forgot, reset, login and
session traffic through one real Apache. No 5xx, no "database is locked" reaching anyone,
and every token and email accounted for in the database afterwards.

LOAD_SECONDS (default 60) and LOAD_CLIENTS (default 64) bound it."""
import http.client
import os
import random
import threading
import time
import urllib.parse

from lkserver import integrity_check, site_sql, wait_site_idle

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "64"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
CUSTOMERS = 20
PASSWORD = "load-test-password"


def test_mixed_traffic_from_64_clients_gets_no_5xx_and_loses_nothing(make_site, apache):
    generous = {"count": 1_000_000, "window": "1h"}
    site = make_site(throttle={"forgot_per_address": generous, "forgot_per_ip": generous,
                               "login_failures_per_account": generous, "login_failures_per_ip": generous})
    site.latchkey("offer", "add", "members", "--name", "Members")
    emails = [f"load{i}@example.com" for i in range(CUSTOMERS)]
    for email in emails:
        assert site.latchkey("user", "add", email, "--no-email", "--offer", "members").returncode == 0
        assert site.latchkey("user", "set-password", email, input=PASSWORD + "\n").returncode == 0
    links = [site.latchkey("user", "reset", email).stdout.splitlines()[1] for email in emails]
    site.chown_var()
    server = apache(site)
    tokens = [urllib.parse.urlparse(link).query for link in links]
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    counts, failures, lock = {}, [], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(seed: int):
        rng = random.Random(seed)
        cookie = None
        while time.monotonic() < deadline:
            kind = rng.choice(["forgot", "forgot-unknown", "reset", "login", "login-wrong", "session", "session"])
            email = rng.choice(emails)
            try:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                if kind.startswith("forgot"):
                    address = email if kind == "forgot" else f"nobody{rng.randrange(10**6)}@example.com"
                    connection.request("POST", "/cgi-bin/forgot", urllib.parse.urlencode({"email": address}), form)
                elif kind == "reset":
                    connection.request("GET", "/cgi-bin/reset?" + rng.choice(tokens))
                elif kind.startswith("login"):
                    password = PASSWORD if kind == "login" else "wrong-password"
                    connection.request("POST", "/cgi-bin/login", urllib.parse.urlencode({"email": email, "password": password}), form)
                else:
                    connection.request("GET", "/cgi-bin/session", headers={"Cookie": cookie} if cookie else {})
                response = connection.getresponse()
                body = response.read()
                if kind == "login" and response.status == 303:
                    cookie = next((v.split(";")[0] for k, v in response.getheaders() if k.lower() == "set-cookie"
                                   and v.startswith("lk_session=")), cookie)
                connection.close()
                with lock:
                    counts[(kind, response.status)] = counts.get((kind, response.status), 0) + 1
                    if response.status >= 500 or b"locked" in body:
                        failures.append((kind, response.status, body[:200]))
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append((kind, "no answer", repr(error)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 120)
    wait_site_idle(site, timeout=60)

    total = sum(counts.values())
    print(f"\n{total} requests from {CLIENTS} clients in {SECONDS:.0f} s: "
          + ", ".join(f"{kind} {status}×{n}" for (kind, status), n in sorted(counts.items(), key=str)))
    assert not failures, failures[:10]
    assert total > CLIENTS, "the load never ran"
    assert "database is locked" not in server.error_log()
    assert integrity_check(site) == "ok"

    # Every known-address forgot request issued (or re-used) a token and queued a mail that was
    # delivered: one reset mail per request, none stuck.
    known_forgot = counts.get(("forgot", 303), 0)
    mails = site_sql(site, "SELECT status, count(*) AS n FROM mail WHERE kind = 'reset' GROUP BY status")
    by_status = {row["status"]: int(row["n"]) for row in mails}
    admin_resets = len(emails)
    assert by_status.get("sent", 0) == known_forgot + admin_resets, by_status
    assert set(by_status) == {"sent"}, by_status
    sent_events = site_sql(site, "SELECT count(*) AS n FROM audit WHERE action = 'reset.sent' AND actor = 'web'")
    assert int(sent_events[0]["n"]) == known_forgot
    files = len(list((site.var / "mail" / "new").iterdir()))
    assert files == known_forgot + admin_resets
