#!/usr/bin/env python3
"""`make bench`: Latchkey measured side by side in one run, with ratios.

1. start-up and peak memory of each CGI, one process at a time, against a C no-op CGI
   (interleaved runs, the same spawn-and-wait for every program);
2. `login` against the raw Argon2id hash at the site's parameters;
3. requests/s under Apache (mod_cgid), nginx + fcgiwrap and lighttpd (wrk), each row
   measured right after the C no-op floor under the same server;
4. `reset` GET and `forgot` POST with 1,000 and with 1,000,000 people in the database;
5. the peer: Django's own views under gunicorn on the same requests;
6. `latchkey build` of the three-locale default site;
7. the staff console's search and record page with 1,000 and with 1,000,000 people;
8. what the password blocklist adds to a reset POST;
9. the integration: the API's person look-up and a Stripe event, against the C floor, and
   against Django doing the same (a bearer key, `stripe.Webhook.construct_event`);
10. FastCGI under the three servers against a C FastCGI no-op (scripts/bench_fastcgi.py);
then bench_forgot.py and bench_login.py (same answer, same time).

`python3 scripts/bench.py [startup] [rps] [scale] [peer] [build] [console] [blocklist] [integration] [fastcgi] [timing]` runs only those
sections. Not a test: it prints figures and fails only when the run itself fails. BENCH_DURATION
(default 3s) and BENCH_CONNECTIONS (default 8) tune wrk; BENCH_SERVERS (default
"apache nginx lighttpd") picks the servers of the requests/s section.
"""
import fcntl
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
sys.path.insert(0, str(ROOT / "scripts"))
from lkserver import Site, latchkey_bin, run_latchkey, wait_site_idle  # noqa: E402
from servers import make_server  # noqa: E402
from django_peer import DjangoPeer  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "3s")
ROUNDS = 3
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "8")
SERVERS = os.environ.get("BENCH_SERVERS", "apache nginx lighttpd").split()
GENEROUS = {k: {"count": 1_000_000, "window": "1h"} for k in
            ["forgot_per_address", "forgot_per_ip", "login_failures_per_account", "login_failures_per_ip"]}
PASSWORD = "bench-password-1"
SECTIONS = ["startup", "rps", "scale", "peer", "build", "console", "blocklist", "integration", "fastcgi", "timing"]
STRIPE_SECRET = "whsec_bench_0123456789abcdef"
NOOP_C = r'''#include <stdio.h>
int main(void) { fputs("Status: 204 No Content\r\n\r\n", stdout); return 0; }
'''
# The raw hash: libsodium's verify of a stored Argon2id hash, alone in a process (argv: hash,
# password, rounds). With rounds > 1 it also prints the in-process time of one hash.
ARGON2_C = r'''#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
    if (argc < 3 || sodium_init() < 0) return 2;
    int rounds = argc > 3 ? atoi(argv[3]) : 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < rounds; i++)
        if (crypto_pwhash_str_verify(argv[1], argv[2], strlen(argv[2])) != 0) return 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rounds > 1) printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / rounds);
    return 0;
}
'''

# The raw hash as a CGI: reads the form, verifies the stored hash (compiled in as STORED) and
# answers with a redirect, as `login` does, so the two can be timed through the same server.
ARGON2_CGI_C = r'''#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char body[1024] = {0};
    const char *length = getenv("CONTENT_LENGTH");
    size_t n = length ? (size_t)atoi(length) : 0;
    if (n >= sizeof body || fread(body, 1, n, stdin) != n || sodium_init() < 0) return 1;
    const char *password = strstr(body, "password=");
    if (!password) return 1;
    password += strlen("password=");
    if (crypto_pwhash_str_verify(STORED, password, strlen(password)) != 0) return 1;
    fputs("Status: 303 See Other\r\nLocation: /members/\r\n\r\n", stdout);
    return 0;
}
'''

# What any CGI that keeps its data in SQLite pays: C, opening the site's database the way the
# CGIs do (WAL files kept) and running the session look-up by its indexed hash.
SQLITE_C = r'''#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    const char *config = getenv("LATCHKEY_CONFIG");
    if (!config) return 1;
    char folder[4096], path[4200];
    strncpy(folder, config, sizeof folder - 1);
    folder[sizeof folder - 1] = 0;
    snprintf(path, sizeof path, "%s/var/latchkey.sqlite3", dirname(folder));
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) return 1;
    sqlite3_busy_timeout(db, 5000);
    int persist = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sqlite3_stmt *statement;
    if (sqlite3_prepare_v2(db, "SELECT s.id, s.expires_at, p.kind FROM session s JOIN person p ON p.id = s.person_id "
                               "WHERE s.id_hash = ?", -1, &statement, NULL) != SQLITE_OK) return 1;
    unsigned char hash[32] = {0};
    sqlite3_bind_blob(statement, 1, hash, sizeof hash, SQLITE_STATIC);
    int status = sqlite3_step(statement);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    if (status != SQLITE_ROW && status != SQLITE_DONE) return 1;
    fputs("Status: 204 No Content\r\n\r\n", stdout);  /* found or not, the work is the same */
    return 0;
}
'''

# Peak memory: a small parent forks and execs the program, so the child's peak resident set
# (wait4's ru_maxrss) is the program's own and not a copy of a large parent's.
PEAK_C = r'''#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    pid_t pid = fork();
    if (pid == 0) { execv(argv[1], argv + 1); _exit(127); }
    int status; struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) return 2;
    fprintf(stderr, "%ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
'''


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, **kw)


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


# --- one process at a time --------------------------------------------------------------------
def run_once(argv, env, stdin=None):
    """Spawns `argv` with `stdin` (a file) and waits: (seconds, exit status)."""
    fd_in = os.open(stdin or "/dev/null", os.O_RDONLY)
    fd_out = os.open("/dev/null", os.O_WRONLY)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, fd_in, 0), (os.POSIX_SPAWN_DUP2, fd_out, 1), (os.POSIX_SPAWN_DUP2, fd_out, 2)])
        _, status = os.waitpid(pid, 0)
        return time.perf_counter() - start, os.waitstatus_to_exitcode(status)
    finally:
        os.close(fd_in)
        os.close(fd_out)


def wait_drained(site, timeout=120):
    """Until the site's after-response drainer has finished and its queue is empty."""
    queue = site.var / "queue"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = [p for p in queue.iterdir() if not p.name.startswith(".")] if queue.exists() else []
        if not pending:
            lock = queue / ".lock"
            if not lock.exists():
                return
            with open(lock) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
        time.sleep(0.005)
    raise RuntimeError("the after-response queue did not drain")


def peak_kib(peak, argv, env, stdin):
    """The peak resident set of one run, in KiB."""
    with open(stdin or "/dev/null", "rb") as f:
        done = subprocess.run([peak, *argv], env=env, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return int(done.stderr.split()[-1])


def interleaved(programs, rounds, site, peak):
    """programs: name → (argv, env, stdin). Runs them round-robin `rounds` times; name →
    (median seconds, peak KiB of one more run)."""
    times = {name: [] for name in programs}
    for _ in range(rounds):
        for name, (argv, env, stdin) in programs.items():
            seconds, status = run_once(argv, env, stdin)
            if status != 0:
                raise RuntimeError(f"{name} exited {status}")
            times[name].append(seconds)
            if "forgot" in name:
                wait_drained(site)
    peaks = {name: peak_kib(peak, *program) for name, program in programs.items()}
    wait_drained(site)
    return {name: (statistics.median(times[name]), peaks[name]) for name in programs}


# --- over HTTP ----------------------------------------------------------------------------------
def wrk(url, script=None):
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", url]
    if script:
        args[1:1] = ["-s", script]
    out = sh(*args).stdout
    # "N requests in 3.00s, …": the count and the time, so queued work can be added to the time.
    done = next(l for l in out.splitlines() if " requests in " in l).split()
    count, seconds = int(done[0]), float(done[3].rstrip(",").removesuffix("s"))
    errors = [l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    return count / seconds, "; ".join(errors), count, seconds


def sustained(url, script, site):
    """req/s counting the time the site's worker takes, after wrk stops, to work what was
    queued: the rate `forgot` can keep up, not just the rate it answers."""
    _, errors, count, seconds = wrk(url, script)
    started = time.monotonic()
    wait_drained(site)
    return count / (seconds + time.monotonic() - started), errors


def lua(folder, name, method="GET", body=None, cookie=None):
    path = folder / f"{name}.lua"
    text = f'wrk.method = "{method}"\n'
    if body is not None:
        text += f'wrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    if cookie:
        text += f'wrk.headers["Cookie"] = "{cookie}"\n'
    path.write_text(text)
    return str(path)


def latencies(url_path, server_url, method="GET", body=None, count=30, headers=None):
    """Seconds of `count` sequential requests, each on a fresh connection."""
    import http.client
    parsed = urllib.parse.urlparse(server_url)
    headers = {**({"Content-Type": "application/x-www-form-urlencoded"} if body else {}), **(headers or {})}
    times = []
    for _ in range(count):
        start = time.perf_counter()
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        conn.request(method, url_path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {server_url}{url_path} answered {response.status}")
        conn.close()
        times.append(time.perf_counter() - start)
    return times


def cgi_runs(site, cgi, work, forgot="nobody%40example.com"):
    """Each CGI run that `startup` times, by name: (argv, environment, stdin file or None), with
    a session cookie from a real login. POST bodies are written into `work`; `forgot` is the
    address the forgot form sends."""
    server = make_server("apache", site, cgi_dir=cgi).start()
    try:
        cookie = session_cookie(server)
    finally:
        server.cleanup()
    site.chown_var()
    base = {"LATCHKEY_CONFIG": str(site.config), "PATH": "/usr/bin:/bin", "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_SCHEME": "http", "SERVER_NAME": "127.0.0.1"}
    def post(body):
        path = work / f"body-{abs(hash(body))}"
        path.write_bytes(body.encode())
        return dict(base, REQUEST_METHOD="POST", CONTENT_TYPE="application/x-www-form-urlencoded",
                    CONTENT_LENGTH=str(len(body))), str(path)
    get = dict(base, REQUEST_METHOD="GET")
    with_cookie = dict(get, HTTP_COOKIE=cookie)
    return {
        "session GET, no cookie": ([str(cgi / "session")], get, None),
        "session GET, valid cookie": ([str(cgi / "session")], with_cookie, None),
        "reset GET, valid link": ([str(cgi / "reset")], dict(get, QUERY_STRING=site.token), None),
        "account GET, valid cookie": ([str(cgi / "account")], with_cookie, None),
        "members GET, valid cookie": ([str(cgi / "members")], dict(with_cookie, PATH_INFO="/"), None),
        "logout POST, stale cookie": ([str(cgi / "logout")], dict(base, REQUEST_METHOD="POST", CONTENT_LENGTH="0",
                                                                   HTTP_COOKIE="lk_session=" + "x" * 43), None),
        "forgot POST (answer; its worker not timed)": ([str(cgi / "forgot")], *post(f"email={forgot}")),
        "login POST, right password": ([str(cgi / "login")], *post(f"email=known%40example.com&password={PASSWORD}")),
    }


# --- the site -------------------------------------------------------------------------------------
def make_site(people=0):
    """A built site with one customer who has a password, a live link and a session, plus
    `people` more customers (and one spent link each) written straight into the database."""
    site = Site.create({"throttle": GENEROUS})
    run_latchkey("offer", "add", "members", "--name", "Members", config=site.config)
    run_latchkey("user", "add", "known@example.com", "--no-email", "--offer", "members", config=site.config)
    run_latchkey("user", "set-password", "known@example.com", config=site.config, input=PASSWORD + "\n")
    if people:
        fill(site.var / "latchkey.sqlite3", people)
    link = run_latchkey("user", "reset", "known@example.com", config=site.config).stdout.splitlines()[1]
    site.token = urllib.parse.urlparse(link).query
    site.chown_var()
    return site


def fill(database, people):
    now = int(time.time())
    db = sqlite3.connect(database)
    with db:
        db.executemany("INSERT INTO person (email, name, kind, created_at, updated_at) VALUES (?, ?, 'customer', ?, ?)",
                       ((f"person{i}@example.net", f"Person {i}", now, now) for i in range(people)))
        db.execute("""INSERT INTO reset_token (person_id, purpose, token_hash, sealed_token, created_at, created_by,
                      reuse_until, expires_at, used_at)
                      SELECT id, 'reset', randomblob(32), randomblob(72), ?, 'bench', ?, ?, ? FROM person
                      WHERE email LIKE 'person%'""", (now - 7200, now - 7000, now - 3600, now - 5000))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def session_cookie(server):
    login = server.post("/cgi-bin/login", {"email": "known@example.com", "password": PASSWORD})
    return next(v.split(";")[0] for v in login.all("Set-Cookie") if "lk_session=" in v)


def main():
    work = Path(tempfile.mkdtemp(prefix="latchkey-bench-", dir="/tmp"))
    work.chmod(0o755)
    cgi = work / "cgi-bin"
    shutil.copytree(ROOT / "cgi-bin", cgi)
    (work / "noop.c").write_text(NOOP_C)
    sh("gcc", "-O2", "-o", cgi / "noop", work / "noop.c")
    (work / "argon2.c").write_text(ARGON2_C)
    sh("gcc", "-O2", "-o", work / "argon2", work / "argon2.c", "-lsodium")
    (work / "sqlite.c").write_text(SQLITE_C)
    sh("gcc", "-O2", "-o", cgi / "c-sqlite", work / "sqlite.c", "-lsqlite3")
    sh("gcc", "-O2", "-static", "-o", cgi / "c-sqlite-static", work / "sqlite.c", "-lsqlite3", "-lm")
    (work / "peak.c").write_text(PEAK_C)
    sh("gcc", "-O2", "-o", work / "peak", work / "peak.c")
    site = make_site()
    cleanup = [site.remove, lambda: shutil.rmtree(work, ignore_errors=True)]
    try:
        print(f"# Latchkey benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
              f"wrk -t2 -c{CONNECTIONS} -d{DURATION}\n")
        wanted = sys.argv[1:] or SECTIONS
        if "startup" in wanted:
            startup(site, cgi, work)
        if "rps" in wanted:
            requests_per_second(site, cgi, work)
        if "scale" in wanted:
            scale(cgi, cleanup)
        if "peer" in wanted:
            peer(site, cgi, work, cleanup)
        if "build" in wanted:
            build_time(site)
        if "console" in wanted:
            console(cgi, cleanup)
        if "blocklist" in wanted:
            blocklist(site, cgi, work)
        if "integration" in wanted:
            integration(cgi, work, cleanup)
        if "fastcgi" in wanted:
            from bench_fastcgi import fastcgi_section
            fastcgi_section(site, cgi, work, cleanup)
    finally:
        for step in reversed(cleanup):
            step()
    for extra in [name for name in ["bench_forgot.py", "bench_login.py"] if "timing" in (sys.argv[1:] or SECTIONS)]:
        print(f"## {extra}\n")
        subprocess.run([sys.executable, str(ROOT / "scripts" / extra)], check=True)
        print()


def startup(site, cgi, work):
    runs = cgi_runs(site, cgi, work)
    login = runs.pop("login POST, right password")
    get = runs["session GET, no cookie"][1]
    programs = {
        "C no-op CGI (the floor)": ([str(cgi / "noop")], get, None),
        "C CGI: open the database, one session look-up (libsqlite3)": ([str(cgi / "c-sqlite")], get, None),
        "the same C CGI, linked statically": ([str(cgi / "c-sqlite-static")], get, None),
        **runs,
    }
    results = interleaved(programs, 200, site, work / "peak")
    site.chown_var()
    floor = results["C no-op CGI (the floor)"][0]
    print("## Start-up and peak memory of one CGI process (200 interleaved runs each, median)\n")
    table(["program", "start to exit", "against the C no-op", "peak RSS"],
          [(name, ms(t), f"{t / floor:.2f}×", f"{peak / 1024:.1f} MiB") for name, (t, peak) in results.items()])

    config = json.loads(site.config.read_text())
    stored = subprocess.run(["sqlite3", str(site.var / "latchkey.sqlite3"),
                             "SELECT password_hash FROM person WHERE email = 'known@example.com'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    hashing = {
        "raw Argon2id verify (libsodium, C, own process)": ([str(work / "argon2"), stored, PASSWORD], get, None),
        "login POST, right password": login,
    }
    results = interleaved(hashing, 40, site, work / "peak")
    site.chown_var()
    warm = float(sh(work / "argon2", stored, PASSWORD, "20").stdout)
    raw = results["raw Argon2id verify (libsodium, C, own process)"][0]
    password = config.get("password", {})
    print(f"## login against the raw Argon2id hash (m = {password.get('argon2_memory_mib', 19)} MiB, "
          f"t = {password.get('argon2_iterations', 2)}, p = 1; 40 interleaved runs each, median)\n")
    table(["program", "start to exit", "against the raw hash", "peak RSS"],
          [(name, ms(t), f"{t / raw:.2f}×", f"{peak / 1024:.1f} MiB") for name, (t, peak) in results.items()]
          + [("one hash inside a warm process (20 in a row)", f"{warm:.2f} ms", f"{warm / 1000 / raw:.2f}×", "")])
    login_answer(site, cgi, work, stored)


def login_answer(site, cgi, work, stored):
    """What the customer waits for: `login` POST answered through Apache, against a C CGI that
    only verifies the same hash, under a second instance of the same server, in turn."""
    (work / "argon2-cgi.c").write_text(ARGON2_CGI_C)
    raw_cgi = work / "argon2-cgi"
    raw_cgi.mkdir(exist_ok=True)
    sh("gcc", "-O2", f'-DSTORED="{stored}"', "-o", raw_cgi / "login", work / "argon2-cgi.c", "-lsodium")
    raw_server, server = make_server("apache", site, cgi_dir=raw_cgi).start(), make_server("apache", site, cgi_dir=cgi).start()
    body = f"email=known%40example.com&password={PASSWORD}"
    times = {"raw": [], "login": []}
    try:
        for _ in range(40):
            times["raw"] += latencies("/cgi-bin/login", raw_server.url, "POST", body, count=1)
            times["login"] += latencies("/cgi-bin/login", server.url, "POST", body, count=1)
            wait_site_idle(site)  # login's checkpoint, after its answer, must not slow the next hash
    finally:
        server.cleanup()
        raw_server.cleanup()
        site.chown_var()
    raw, login = statistics.median(times["raw"]), statistics.median(times["login"])
    print("### Answered through Apache (one client, 40 requests each in turn, median)\n")
    table(["request", "answered in", "against the raw hash"],
          [("C CGI: read the form, verify the hash, redirect", ms(raw), "1.00×"),
           ("login POST, right password", ms(login), f"{login / raw:.2f}×")])


def requests_per_second(site, cgi, work):
    print(f"## Requests per second (wrk -t2 -c{CONNECTIONS} -d{DURATION}): each row and the C no-op floor under the "
          f"same server, in turn, {ROUNDS} times; medians, and the median of the {ROUNDS} ratios. A `forgot` row's "
          f"time includes working the queue it left\n")
    # The floor runs under a second instance of the same server whose endpoints are all the C
    # no-op (nginx routes only the endpoint names), measured alternately with the real one.
    floor_cgi = work / "floor-cgi"
    floor_cgi.mkdir(exist_ok=True)
    for name in ["login", "logout", "forgot", "account", "session", "members"]:
        shutil.copy(cgi / "noop", floor_cgi / name)
    # …except `reset` and `account`, which there are the C program that opens the database and
    # looks a session up, linked as usual and statically: what any CGI doing that work can reach.
    shutil.copy(cgi / "c-sqlite", floor_cgi / "reset")
    shutil.copy(cgi / "c-sqlite-static", floor_cgi / "account")
    for kind in SERVERS:
        floor_server, server = make_server(kind, site, cgi_dir=floor_cgi), make_server(kind, site, cgi_dir=cgi)
        for each in (floor_server, server):
            each.fcgiwrap_children = 4  # fcgiwrap runs one CGI at a time unless told otherwise
            each.start()
        try:
            cookie = session_cookie(server)
            rows = [
                ("C CGI: open the database, one session look-up", floor_server.url + "/cgi-bin/reset", None),
                ("the same C CGI, linked statically", floor_server.url + "/cgi-bin/account", None),
                ("static page (login.html)", server.url + "/login.html", None),
                ("session GET, valid cookie", server.url + "/cgi-bin/session", lua(work, "session", cookie=cookie)),
                ("reset GET, valid link", server.url + "/cgi-bin/reset?" + site.token, None),
                ("forgot POST, known address", server.url + "/cgi-bin/forgot", lua(work, "known", "POST", "email=known%40example.com")),
                ("forgot POST, unknown address", server.url + "/cgi-bin/forgot", lua(work, "unknown", "POST", "email=nobody%40example.com")),
                ("login POST, right password", server.url + "/cgi-bin/login", lua(work, "login", "POST", f"email=known%40example.com&password={PASSWORD}")),
            ]
            out = []
            static_c = floor_server.url + "/cgi-bin/account"
            for name, target, script in rows:
                floors, rates, ratios, references, errors = [], [], [], [], set()
                # session and reset also beside the static C reference doing the same look-up.
                against_c = name.startswith(("session", "reset"))
                for _ in range(ROUNDS):  # floor and row in turn: a slow patch of the machine hits both
                    floor = wrk(floor_server.url + "/cgi-bin/session")[0]
                    rate, error = sustained(target, script, site)
                    if against_c:
                        references.append(rate / wrk(static_c)[0])
                    floors.append(floor)
                    rates.append(rate)
                    ratios.append(rate / floor)
                    errors |= {error} - {""}
                ratio = "—" if name.startswith(("static", "login")) else f"{statistics.median(ratios):.2f}×"
                reference = f"{statistics.median(references):.2f}×" if references else "—"
                out.append((name, f"{statistics.median(rates):,.0f}", f"{statistics.median(floors):,.0f}", ratio, reference,
                            "; ".join(errors)))
            print(f"### {dict(apache='Apache 2.4, mod_cgid', nginx='nginx + fcgiwrap', lighttpd='lighttpd, mod_cgi')[kind]}\n")
            table(["request", "req/s", "C floor req/s (just before)", "against the floor", "against the static C reference",
                   "errors"], out)
        finally:
            server.cleanup()
            floor_server.cleanup()
            site.chown_var()


def scale(cgi, cleanup):
    print("## 1,000 against 1,000,000 people (Apache; both sites served at once and measured in "
          "alternating rounds, fresh connection per request, median)\n")
    started = time.monotonic()
    sites = {}
    for people in [1_000, 1_000_000]:
        sites[people] = make_site(people)
        cleanup.append(sites[people].remove)
    built = time.monotonic() - started
    os.sync()  # the filled database's pages on disk, not being written back during the rounds
    servers = {people: make_server("apache", site, cgi_dir=cgi).start() for people, site in sites.items()}
    reset, forgot, work = ({people: [] for people in sites} for _ in range(3))
    try:
        for _ in range(10):
            for people, site in sites.items():
                url = servers[people].url
                reset[people] += latencies("/cgi-bin/reset?" + site.token, url)
                forgot[people] += latencies("/cgi-bin/forgot", url, "POST", "email=known%40example.com")
                wait_drained(site)
                # The forgot worker's look-up, token and mail, timed to the message's arrival.
                mail = site.var / "mail" / "new"
                for _ in range(5):
                    before = len(list(mail.iterdir()))
                    start = time.perf_counter()
                    latencies("/cgi-bin/forgot", url, "POST", "email=known%40example.com", count=1)
                    while len(list(mail.iterdir())) == before:
                        time.sleep(0.0005)
                    work[people].append(time.perf_counter() - start)
                    wait_drained(site)
    finally:
        for server in servers.values():
            server.cleanup()
    rows = []
    for name, series in [("reset GET, valid link (300 requests)", reset),
                         ("forgot POST, known address: the answer (300)", forgot),
                         ("forgot POST, known address: until the mail is in the Maildir (50)", work)]:
        small, large = statistics.median(series[1_000]), statistics.median(series[1_000_000])
        rows.append((name, ms(small), ms(large), f"{large / small:.2f}×"))
    table(["request", "1,000 people", "1,000,000 people", "ratio"], rows)
    print(f"(making both sites took {built:.0f} s: 1,000,000 people and one spent link each, written straight into the database)\n")


def peer(site, cgi, work, cleanup):
    config = json.loads(site.config.read_text())
    password = config.get("password", {})
    django = DjangoPeer(work / "django", password.get("argon2_iterations", 2), password.get("argon2_memory_mib", 19)).start()
    cleanup.append(django.stop)
    server = make_server("apache", site, cgi_dir=cgi).start()
    try:
        rows = [
            ("reset GET, valid link", ("/cgi-bin/reset?" + site.token, None), (django.reset_path, None)),
            ("forgot POST, known address", ("/cgi-bin/forgot", lua(work, "known", "POST", "email=known%40example.com")),
             ("/forgot", lua(work, "dj-known", "POST", django.form({"email": "known@example.com"}), django.csrf_cookie))),
            ("forgot POST, unknown address", ("/cgi-bin/forgot", lua(work, "unknown", "POST", "email=nobody%40example.com")),
             ("/forgot", lua(work, "dj-unknown", "POST", django.form({"email": "nobody@example.com"}), django.csrf_cookie))),
            ("login POST, right password", ("/cgi-bin/login", lua(work, "login", "POST", f"email=known%40example.com&password={PASSWORD}")),
             ("/login", lua(work, "dj-login", "POST", django.form({"username": "known", "password": PASSWORD}), django.csrf_cookie))),
        ]
        out = []
        for name, (ours, ours_script), (theirs, theirs_script) in rows:
            rates, peer_rates, ratios, errors = [], [], [], set()
            for _ in range(ROUNDS):
                rate, error = sustained(server.url + ours, ours_script, site)
                peer_rate, peer_error = wrk(django.url + theirs, theirs_script)[:2]
                rates.append(rate)
                peer_rates.append(peer_rate)
                ratios.append(rate / peer_rate)
                errors |= {error, peer_error} - {""}
            out.append((name, f"{statistics.median(rates):,.0f}", f"{statistics.median(peer_rates):,.0f}",
                        f"{statistics.median(ratios):.2f}×", "; ".join(errors)))
        print("## Against the peer: Django's own views under gunicorn (2 workers), SQLite, file email backend, same "
              f"Argon2id cost ({ROUNDS} rounds in turn; medians)\n")
        table(["request", "Latchkey (Apache) req/s", "Django + gunicorn req/s", "Latchkey / Django", "errors"], out)
    finally:
        server.cleanup()
        django.stop()


def build_time(site):
    report = site.top / "build.json"
    sh("hyperfine", "-N", "-w", "2", "-r", "15", "--export-json", report, f"{latchkey_bin()} build --config {site.config}")
    result = json.loads(report.read_text())["results"][0]
    pages = sum(1 for p in site.public.rglob("*.html"))
    print("## latchkey build (default site: en, fr, es)\n")
    table(["command", "median", "pages written"], [("latchkey build", ms(result["median"]), pages)])


def console(cgi, cleanup):
    """The console's search (substring, any case, 25 a page, newest first) and a record page,
    with 1,000 and 1,000,000 people, both sites served at once and measured in alternating
    rounds. The target: at most 100 ms a search at 1,000,000 people (these times include the
    CGI's start and Apache)."""
    from console import enrol  # noqa: E402  (Tests/e2e/console.py; needs pyotp)
    print("## Staff console: search and record page, 1,000 against 1,000,000 people (Apache, median of 40)\n")
    sites = {}
    for people in [1_000, 1_000_000]:
        sites[people] = make_site(people)
        cleanup.append(sites[people].remove)
    os.sync()
    servers = {people: make_server("apache", site, cgi_dir=cgi).start() for people, site in sites.items()}
    try:
        staff = {people: enrol(server, "bench-staff@example.com", "support") for people, server in servers.items()}
        known = {people: site_id(site) for people, site in sites.items()}
        requests = [("search, one match (\"known@exa\")", "/people?q=known%40exa"),
                    ("search, every person matches (\"example\"), first page", "/people?q=EXAMPLE"),
                    ("search, every person matches, page 40", "/people?q=example&page=40"),
                    ("search, two characters (address prefix \"pe\")", "/people?q=pe"),
                    ("record page (live reset link shown)", "/people/{id}")]
        series = {(name, people): [] for name, _ in requests for people in sites}
        for _ in range(4):
            for people, server in servers.items():
                headers = {"Cookie": f"lk_staff={staff[people].cookie}"}
                for name, path in requests:
                    series[(name, people)] += latencies("/cgi-bin/admin" + path.format(id=known[people]), server.url, count=10, headers=headers)
    finally:
        for server in servers.values():
            server.cleanup()
    rows = []
    for name, _ in requests:
        small, large = statistics.median(series[(name, 1_000)]), statistics.median(series[(name, 1_000_000)])
        rows.append((name, ms(small), ms(large), f"{large / small:.2f}×", "≤ 100 ms" if name.startswith("search") else ""))
    table(["request", "1,000 people", "1,000,000 people", "ratio", "target at 1,000,000"], rows)


def site_id(site):
    db = sqlite3.connect(site.var / "latchkey.sqlite3")
    try:
        return db.execute("SELECT id FROM person WHERE email = 'known@example.com'").fetchone()[0]
    finally:
        db.close()


def blocklist(site, cgi, work):
    """A reset POST refused by the blocklist (it bisects the built-in list) against the same
    request refused by the length rule, checked before the list; neither hashes nor uses up the
    link, so the difference is the look-up."""
    base = {"LATCHKEY_CONFIG": str(site.config), "PATH": "/usr/bin:/bin", "REMOTE_ADDR": "127.0.0.1", "REQUEST_SCHEME": "http",
            "SERVER_NAME": "127.0.0.1", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "HTTP_COOKIE": "lk_reset=" + site.token.split("=", 1)[1]}
    def run(password):
        body = f"new_password={urllib.parse.quote(password)}&confirm_password={urllib.parse.quote(password)}"
        path = work / f"reset-{abs(hash(password))}"
        path.write_bytes(body.encode())
        return [str(cgi / "reset")], dict(base, CONTENT_LENGTH=str(len(body))), str(path)
    programs = {"reset POST, refused by length (before the list)": run("short"),
                "reset POST, refused by the built-in list (\"password123\")": run("password123")}
    results = interleaved(programs, 200, site, work / "peak")
    base_time = results["reset POST, refused by length (before the list)"][0]
    print("## The password blocklist in a reset POST (200 interleaved runs each, median)\n")
    table(["program", "start to exit", "against the length refusal"],
          [(name, ms(t), f"{t / base_time:.2f}×") for name, (t, _) in results.items()])


def stripe_event(email, event_id):
    """A signed `checkout.session.completed` (body, Stripe-Signature header)."""
    import hmac, hashlib
    body = json.dumps({"id": event_id, "object": "event", "type": "checkout.session.completed", "created": int(time.time()),
                       "data": {"object": {"id": "cs_bench_" + event_id, "object": "checkout.session", "payment_status": "paid",
                                           "customer": "cus_" + event_id, "payment_intent": "pi_" + event_id,
                                           "customer_details": {"email": email, "name": "Bench Buyer"},
                                           "metadata": {"latchkey_offers": "members"}}}})
    stamp = int(time.time())
    mac = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={mac}"


def integration(cgi, work, cleanup):
    """The API's `GET people?email=` and a Stripe event: one process each against the C no-op
    and the C SQLite look-up; then through Apache beside the C no-op under the same server and
    Django's equivalent under gunicorn, in turn. A replayed event (Stripe's retry) is verified
    and found already worked; a new one creates the buyer, grants and queues the welcome."""
    site = Site.create({"throttle": GENEROUS, "api": {"rate_limit": {"count": 1_000_000, "window": "1m"}},
                        "stripe": {"webhook_secret": STRIPE_SECRET}})
    cleanup.append(site.remove)
    run_latchkey("offer", "add", "members", "--name", "Members", config=site.config)
    run_latchkey("user", "add", "known@example.com", "--no-email", "--offer", "members", config=site.config)
    key = run_latchkey("api-key", "add", "bench", "--scopes", "people:read", config=site.config).stdout.strip()
    site.chown_var()
    server = make_server("apache", site, cgi_dir=cgi).start()
    body, signature = stripe_event("replayed@example.com", "evt_bench_replayed")
    latencies("/cgi-bin/stripe", server.url, "POST", body, count=1, headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    wait_drained(site)
    base = {"LATCHKEY_CONFIG": str(site.config), "PATH": "/usr/bin:/bin", "REMOTE_ADDR": "127.0.0.1", "REQUEST_SCHEME": "http",
            "SERVER_NAME": "127.0.0.1"}
    get = dict(base, REQUEST_METHOD="GET")
    event_file = work / "stripe-replayed.json"
    event_file.write_bytes(body.encode())
    programs = {
        "C no-op CGI (the floor)": ([str(cgi / "noop")], get, None),
        "the same C CGI, linked statically": ([str(cgi / "c-sqlite-static")], get, None),
        "api GET /v1/people?email=, valid key": ([str(cgi / "api")], dict(get, PATH_INFO="/v1/people", QUERY_STRING="email=known%40example.com",
                                                                          HTTP_AUTHORIZATION="Bearer " + key), None),
        "stripe POST, replayed event (verified, already worked)": ([str(cgi / "stripe")], dict(
            base, REQUEST_METHOD="POST", CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body.encode())),
            HTTP_STRIPE_SIGNATURE=signature), str(event_file)),
    }
    results = interleaved(programs, 200, site, work / "peak")
    floor = results["C no-op CGI (the floor)"][0]
    print("## Integration: the API and Stripe, one CGI process (200 interleaved runs each, median)\n")
    table(["program", "start to exit", "against the C no-op", "peak RSS"],
          [(name, ms(t), f"{t / floor:.2f}×", f"{peak / 1024:.1f} MiB") for name, (t, peak) in results.items()])

    django = DjangoPeer(work / "django-api", 2, 19, api_key=key, stripe_secret=STRIPE_SECRET).start()
    cleanup.append(django.stop)
    try:
        status, _, _ = django.request("POST", "/stripe", body.encode(), {"Content-Type": "application/json", "Stripe-Signature": signature})
        assert status == 200, status
        def script(name, method, headers, payload=None):
            path = work / f"{name}.lua"
            text = f'wrk.method = "{method}"\n' + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
            if payload is not None:
                text += "wrk.body = " + json.dumps(payload) + "\n"
            path.write_text(text)
            return str(path)
        auth = {"Authorization": "Bearer " + key}
        stripe_headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
        rows = [("api GET people?email=", "/cgi-bin/api/v1/people?email=known%40example.com", script("api", "GET", auth),
                 "/api/people?email=known%40example.com", script("dj-api", "GET", auth)),
                ("stripe POST, replayed event", "/cgi-bin/stripe", script("stripe", "POST", stripe_headers, body),
                 "/stripe", script("dj-stripe", "POST", stripe_headers, body))]
        out = []
        for name, ours, ours_script, theirs, theirs_script in rows:
            rates, floors, peers, errors = [], [], [], set()
            for _ in range(ROUNDS):
                floor_rate = wrk(server.url + "/cgi-bin/noop")[0]
                rate, error = wrk(server.url + ours, ours_script)[:2]
                peer_rate, peer_error = wrk(django.url + theirs, theirs_script)[:2]
                floors.append(floor_rate)
                rates.append(rate)
                peers.append(peer_rate)
                errors |= ({"Latchkey: " + error} if error else set()) | ({"Django: " + peer_error} if peer_error else set())
            out.append((name, f"{statistics.median(rates):,.0f}", f"{statistics.median(floors):,.0f}",
                        f"{statistics.median([r / f for r, f in zip(rates, floors)]):.2f}×", f"{statistics.median(peers):,.0f}",
                        f"{statistics.median([r / p for r, p in zip(rates, peers)]):.2f}×", "; ".join(errors)))
        fresh = []
        for n in range(30):
            body, signature = stripe_event(f"buyer-{n}@example.com", f"evt_bench_new_{n}")
            fresh += latencies("/cgi-bin/stripe", server.url, "POST", body, count=1,
                               headers={"Content-Type": "application/json", "Stripe-Signature": signature})
        wait_drained(site)
        noop = latencies("/cgi-bin/noop", server.url, count=30)
    finally:
        server.cleanup()
        django.stop()
    print(f"## Integration through Apache, beside the C no-op under the same server and Django + gunicorn (2 workers) ({ROUNDS} rounds in turn; medians)\n")
    table(["request", "Latchkey req/s", "C no-op req/s", "against the floor", "Django req/s", "Latchkey / Django", "errors"], out)
    print("## A new Stripe event (creates the buyer, grants, queues the welcome mail), one at a time through Apache (median of 30)\n")
    table(["request", "answered in", "against a C no-op request"],
          [("stripe POST, new event", ms(statistics.median(fresh)), f"{statistics.median(fresh) / statistics.median(noop):.2f}×"),
           ("C no-op CGI", ms(statistics.median(noop)), "1.00×")])


if __name__ == "__main__":
    main()
