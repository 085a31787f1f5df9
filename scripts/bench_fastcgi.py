"""`make bench`'s FastCGI section (scripts/bench.py calls `fastcgi_section`): Latchkey's workers
under nginx (`latchkey serve`), Apache (mod_proxy_fcgi to `latchkey serve`, and mod_fcgid) and
lighttpd (bin-path),
each row beside its own floor under the same server, in turn:

- `session` and `reset` GET and `forgot` POST against a C FastCGI no-op (Debian's libfcgi, used
  here only), run by the same supervisor or lighttpd in the same numbers, and against the same
  request as plain CGI under the same server;
- a 100 KiB members file behind the `session` authorizer against the same file served with no
  check (from the document root), and the same file behind the C no-op as authorizer: what
  any check by a FastCGI round trip costs;
- `login` against a C FastCGI responder that only verifies the same Argon2id hash;
- a worker's resident size after its first request and after 100,000.
"""
import statistics
import subprocess
import time
from pathlib import Path

import bench as b
from servers import make_server

# As an authorizer it grants (200, naming a person as mod_authnz_fcgi needs); as a responder, 204.
NOOP_FCGI_C = r'''#include <fcgiapp.h>
#include <string.h>
int main(void) {
    FCGX_Request request;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&request, 0, 0) != 0) return 1;
    while (FCGX_Accept_r(&request) == 0) {
        const char *role = FCGX_GetParam("FCGI_ROLE", request.envp);
        FCGX_PutS(role && strcmp(role, "AUTHORIZER") == 0 ? "Status: 200 OK\r\nVariable-LATCHKEY_PERSON: 1\r\n\r\n" : "Status: 204 No Content\r\n\r\n", request.out);
        FCGX_Finish_r(&request);
    }
    return 0;
}
'''

# The raw hash as a FastCGI responder: reads the form, verifies the stored hash, redirects.
ARGON2_FCGI_C = r'''#include <fcgiapp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    FCGX_Request request;
    if (sodium_init() < 0 || FCGX_Init() != 0 || FCGX_InitRequest(&request, 0, 0) != 0) return 1;
    while (FCGX_Accept_r(&request) == 0) {
        char body[1024] = {0};
        const char *length = FCGX_GetParam("CONTENT_LENGTH", request.envp);
        int n = length ? atoi(length) : 0;
        const char *password = NULL;
        if (n > 0 && n < (int)sizeof body && FCGX_GetStr(body, n, request.in) == n) password = strstr(body, "password=");
        if (password && crypto_pwhash_str_verify(STORED, password + 9, strlen(password + 9)) == 0)
            FCGX_PutS("Status: 303 See Other\r\nLocation: /members/\r\n\r\n", request.out);
        else
            FCGX_PutS("Status: 400 Bad Request\r\n\r\n", request.out);
        FCGX_Finish_r(&request);
    }
    return 0;
}
'''

# The FastCGI kind, the plain CGI kind under the same server, and the table's title.
KINDS = [("nginx-fastcgi", "nginx", "nginx, fastcgi_pass to latchkey serve"),
         ("apache-fastcgi", "apache", "Apache 2.4, mod_proxy_fcgi to latchkey serve"),
         ("apache-fcgid", "apache", "Apache 2.4, mod_fcgid"),
         ("lighttpd-fastcgi", "lighttpd", "lighttpd, mod_fastcgi bin-path")]


def worker_pids(site):
    """The FastCGI workers of `site`: processes with its config whose descriptor 0 listens."""
    from lkserver import _listening_sockets
    listening, found = _listening_sockets(), []
    want = f"LATCHKEY_CONFIG={site.config}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if want in (entry / "environ").read_bytes().split(b"\0") and str((entry / "fd" / "0").readlink()) in listening:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def resident_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fastcgi_section(site, cgi, work, cleanup):
    floor_dir = work / "fcgi-floor"
    raw_dir = work / "fcgi-raw"
    floor_dir.mkdir(exist_ok=True)
    raw_dir.mkdir(exist_ok=True)
    (work / "noop-fcgi.c").write_text(NOOP_FCGI_C)
    b.sh("gcc", "-O2", "-o", floor_dir / "session", work / "noop-fcgi.c", "-lfcgi")
    stored = b.sqlite3.connect(site.var / "latchkey.sqlite3").execute(
        "SELECT password_hash FROM person WHERE email = 'known@example.com'").fetchone()[0]
    (work / "argon2-fcgi.c").write_text(ARGON2_FCGI_C)
    b.sh("gcc", "-O2", f'-DSTORED="{stored}"', "-o", raw_dir / "session", work / "argon2-fcgi.c", "-lfcgi", "-lsodium")
    members = site.dir / "members"
    (members / "lesson.bin").write_bytes(bytes(range(256)) * 400)  # 100 KiB
    print(f"## FastCGI (wrk -t2 -c{b.CONNECTIONS} -d{b.DURATION}): each row and its floor under the same server, in turn, "
          f"{b.ROUNDS} times; medians, and the median of the {b.ROUNDS} ratios\n")
    body = f"email=known%40example.com&password={b.PASSWORD}"
    for kind, plain_kind, title in KINDS:
        floor = make_server(kind, site, cgi_dir=floor_dir)
        server = make_server(kind, site, cgi_dir=cgi)
        plain = make_server(plain_kind, site, cgi_dir=cgi)
        plain.fcgiwrap_children = 4
        started = []
        try:
            for each in (floor, server, plain):
                each.start()
                started.append(each)
            # The same bytes as a static file: what the server does with no check in front.
            (site.public / "lesson.bin").write_bytes((members / "lesson.bin").read_bytes())
            cookie = b.session_cookie(server)
            session_lua = b.lua(work, "fcgi-session", cookie=cookie)
            # The last row is what any authorizer costs: the same file behind the C no-op as `session`.
            rows = [("session GET, valid cookie", server, "/cgi-bin/session", session_lua, "floor"),
                    ("reset GET, valid link", server, "/cgi-bin/reset?" + site.token, None, "floor"),
                    ("forgot POST, unknown address", server, "/cgi-bin/forgot", b.lua(work, "fcgi-unknown", "POST", "email=nobody%40example.com"), "floor"),
                    ("members file, 100 KiB, behind the authorizer", server, "/members/lesson.bin", session_lua, "static"),
                    ("the same file behind the C FastCGI no-op as authorizer", floor, "/members/lesson.bin", None, "static")]
            out = []
            for name, via, path, script, against in rows:
                rates, floors, cgis, errors = [], [], [], set()
                for _ in range(b.ROUNDS):
                    if against == "floor":
                        floors.append(b.wrk(floor.url + "/cgi-bin/session")[0])
                    else:
                        floors.append(b.wrk(server.url + "/lesson.bin")[0])
                    rate, error = b.sustained(via.url + path, script, site)
                    rates.append(rate)
                    errors |= {error} - {""}
                    if against == "floor" and not name.startswith("forgot"):
                        cgis.append(b.wrk(plain.url + path, script)[0])
                ratio = statistics.median([r / f for r, f in zip(rates, floors)])
                versus_cgi = f"{statistics.median([r / c for r, c in zip(rates, cgis)]):.1f}×" if cgis else "—"
                # The most any responder could reach against the CGI: the no-op's own ratio.
                ceiling = f"{statistics.median([f / c for f, c in zip(floors, cgis)]):.1f}×" if cgis else "—"
                out.append((name, f"{statistics.median(rates):,.0f}", f"{statistics.median(floors):,.0f}",
                            f"{ratio:.2f}×", versus_cgi, ceiling, "; ".join(errors)))
            print(f"### {title}\n")
            b.table(["request", "req/s", "floor req/s (C FastCGI no-op; static file for members)", "against the floor",
                     "against the same as CGI", "the floor against the same as CGI", "errors"], out)
        finally:
            for each in reversed(started):
                each.cleanup()
            site.chown_var()
    login_and_memory(site, cgi, raw_dir, work, body)


def login_and_memory(site, cgi, raw_dir, work, body):
    raw, server = make_server("nginx-fastcgi", site, cgi_dir=raw_dir), make_server("nginx-fastcgi", site, cgi_dir=cgi)
    started = []
    times = {"raw": [], "login": []}
    try:
        for each in (raw, server):
            each.start()
            started.append(each)
        for _ in range(40):
            times["raw"] += b.latencies("/cgi-bin/login", raw.url, "POST", body, count=1)
            times["login"] += b.latencies("/cgi-bin/login", server.url, "POST", body, count=1)
            b.wait_site_idle(site)
    finally:
        for each in reversed(started):
            each.cleanup()
        site.chown_var()
    fast, hashed = statistics.median(times["login"]), statistics.median(times["raw"])
    print("### login through nginx (FastCGI), one client, 40 requests each in turn, median\n")
    b.table(["request", "answered in", "against the raw hash"],
            [("C FastCGI: read the form, verify the hash, redirect", b.ms(hashed), "1.00×"),
             ("login POST, right password", b.ms(fast), f"{fast / hashed:.2f}×")])

    # One worker, so every request lands on it.
    site.update_config(fastcgi={"workers": 1, "max_requests": 1_000_000})
    server = make_server("nginx-fastcgi", site, cgi_dir=cgi).start()
    try:
        cookie = b.session_cookie(server)
        script = b.lua(work, "fcgi-memory", cookie=cookie)
        b.wrk(server.url + "/cgi-bin/session", script)
        pids = worker_pids(site)
        assert len(pids) == 1, pids
        first = resident_kib(pids[0])
        total, errors = 0, set()
        while total < 100_000:
            rate, error, count, _ = b.wrk(server.url + "/cgi-bin/session", script)
            total += count
            errors |= {error} - {""}
        assert worker_pids(site) == pids, "the worker was replaced during the run"
        last = resident_kib(pids[0])
    finally:
        server.cleanup()
        config = site.read_config()
        config.pop("fastcgi", None)
        site.write_config(config)
        site.chown_var()
    print("### One worker's resident size (session GET, valid cookie)\n")
    b.table(["after", "resident", "errors"], [("its first requests", f"{first / 1024:.1f} MiB", ""),
                                              (f"{total:,} more requests", f"{last / 1024:.1f} MiB", "; ".join(errors))])
