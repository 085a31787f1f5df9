#!/usr/bin/env python3
"""`make bench`: Latchkey's CGIs against the floor, measured side by side in one run.

- start-up: each CGI against a C no-op CGI (hyperfine, same environment);
- requests/s under one real Apache (mod_cgid) on loopback with wrk: a static page, the C
  no-op CGI (the floor), `session` GET, `reset` GET with a valid link, `forgot` POST for a
  known and an unknown address, `login` POST;
- then bench_forgot.py and bench_login.py (timing equality of the answers).

Not a test: it prints figures and ratios and fails only when the run itself fails.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from lkserver import ApacheServer, Site, run_latchkey  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "5s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "8")
NOOP_C = r'''#include <stdio.h>
int main(void) { fputs("Status: 204 No Content\r\n\r\n", stdout); return 0; }
'''


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, **kw)


def wrk(url, script=None):
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url]
    if script:
        args[1:1] = ["-s", script]
    out = sh(*args).stdout
    rate = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
    non2xx = next((l for l in out.splitlines() if "Non-2xx" in l), "")
    return rate, non2xx.strip()


def post_script(folder, name, body, cookie=None):
    path = folder / f"{name}.lua"
    headers = 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    if cookie:
        headers += f'wrk.headers["Cookie"] = "{cookie}"\n'
    path.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\n{headers}')
    return str(path)


def main():
    work = Path(tempfile.mkdtemp(prefix="latchkey-bench-", dir="/tmp"))
    work.chmod(0o755)
    cgi = work / "cgi-bin"
    shutil.copytree(ROOT / "cgi-bin", cgi)
    (work / "noop.c").write_text(NOOP_C)
    sh("gcc", "-O2", "-o", cgi / "noop", work / "noop.c")
    site = Site.create({"throttle": {k: {"count": 1_000_000, "window": "1h"} for k in
                                     ["forgot_per_address", "forgot_per_ip", "login_failures_per_account", "login_failures_per_ip"]}})
    server = ApacheServer(site, cgi_dir=cgi)
    try:
        run_latchkey("offer", "add", "members", "--name", "Members", config=site.config)
        run_latchkey("user", "add", "known@example.com", "--no-email", "--offer", "members", config=site.config)
        run_latchkey("user", "set-password", "known@example.com", config=site.config, input="bench-password-1\n")
        server.start()
        link = run_latchkey("user", "reset", "known@example.com", config=site.config).stdout.splitlines()[1]
        site.chown_var()
        token = urllib.parse.urlparse(link).query
        login = server.post("/cgi-bin/login", {"email": "known@example.com", "password": "bench-password-1"})
        cookie = next(v.split(";")[0] for v in login.all("Set-Cookie") if v.startswith("lk_session="))
        env = {"REQUEST_METHOD": "GET", "LATCHKEY_CONFIG": str(site.config), "PATH": "/usr/bin:/bin"}

        print("== start-up of one process (hyperfine, same environment), against a C no-op CGI")
        commands = [f"{cgi}/noop", f"{cgi}/session", f"{cgi}/reset"]
        names = ["C no-op", "session GET (no cookie)", "reset GET (bad token)"]
        report = work / "startup.json"
        env_run = dict(os.environ, **env, QUERY_STRING="token=x")
        sh("hyperfine", "-N", "-w", "20", "-r", "300", "--export-json", report, *commands, env=env_run)
        results = json.loads(report.read_text())["results"]
        floor = results[0]["median"]
        for name, r in zip(names, results):
            print(f"  {name:28s} {r['median'] * 1000:6.2f} ms   {r['median'] / floor:5.2f} × the C floor")

        print(f"\n== requests/s under Apache mod_cgid (wrk -t2 -c{CONNECTIONS} -d{DURATION}), loopback")
        rows = [
            ("static page (login.html)", server.url + "/login.html", None),
            ("C no-op CGI (the floor)", server.url + "/cgi-bin/noop", None),
            ("session GET, valid cookie", server.url + "/cgi-bin/session", None),
            ("reset GET, valid link", server.url + "/cgi-bin/reset?" + token, None),
            ("forgot POST, known address", server.url + "/cgi-bin/forgot", post_script(work, "known", "email=known%40example.com")),
            ("forgot POST, unknown address", server.url + "/cgi-bin/forgot", post_script(work, "unknown", "email=nobody%40example.com")),
            ("login POST, right password", server.url + "/cgi-bin/login",
             post_script(work, "login", "email=known%40example.com&password=bench-password-1")),
        ]
        session_script = work / "session.lua"
        session_script.write_text(f'wrk.headers["Cookie"] = "{cookie}"\n')
        floor_rate = None
        for name, url, script in rows:
            if name.startswith("session"):
                script = str(session_script)
            rate, non2xx = wrk(url, script)
            if name.startswith("C no-op"):
                floor_rate = rate
            ratio = f"{rate / floor_rate:5.2f} × floor" if floor_rate and not name.startswith(("static", "C no-op")) else ""
            print(f"  {name:32s} {rate:9.0f} req/s  {ratio}  {non2xx}")
    finally:
        server.cleanup()
        site.remove()
        shutil.rmtree(work, ignore_errors=True)
    for extra in ["bench_forgot.py", "bench_login.py"]:
        if (ROOT / "scripts" / extra).exists():
            print(f"\n== {extra}")
            subprocess.run([sys.executable, str(ROOT / "scripts" / extra)], check=True)


if __name__ == "__main__":
    main()
