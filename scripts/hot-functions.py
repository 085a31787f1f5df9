#!/usr/bin/env python3
"""Writes Sources/latchkey-cgi/hot-functions.txt: the functions each CGI runs, for the linker.

A CGI process lives about a millisecond, and here a page fault costs 3–5 µs. The kernel maps
an executable's code 64 KiB around each faulting address, so code spread over the 7 MB text
costs a fault per 64 KiB window it touches. The build (Makefile) hands this list to lld
(`--symbol-ordering-file`), which puts these functions side by side at the start of the text.

The list is every function called, in the order callgrind first names them, while the built
CGIs answer the requests the benchmark measures: `session` with and without a cookie, `reset`
with a live link, `account`, `members`, `logout`, `forgot` (with the worker it forks) and a
`login` with the right password. A function missing from it still links, only elsewhere;
names that no longer exist are ignored. Rerun it after changing what a CGI does
(`make build && python3 scripts/hot-functions.py && make build`); it needs valgrind.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from bench import PASSWORD, make_site, session_cookie, wait_drained  # noqa: E402
from servers import make_server  # noqa: E402

OUT = ROOT / "Sources" / "latchkey-cgi" / "hot-functions.txt"


def functions(profile):
    """Function names in a callgrind profile, first mention first."""
    names = {}
    for line in profile.read_text(errors="replace").splitlines():
        match = re.match(r"c?fn=\(\d+\) (.+)", line)
        if match:
            names.setdefault(re.sub(r"'\d+$", "", match.group(1).strip()), None)
    return list(names)


def main():
    if not shutil.which("valgrind"):
        sys.exit("hot-functions.py: needs valgrind (apt-get install valgrind)")
    cgi = ROOT / "cgi-bin"
    work = Path(tempfile.mkdtemp(prefix="latchkey-hot-", dir="/tmp"))
    work.chmod(0o755)
    site = make_site()
    try:
        server = make_server("apache", site, cgi_dir=cgi).start()
        try:
            cookie = session_cookie(server)
        finally:
            server.cleanup()
        base = {"LATCHKEY_CONFIG": str(site.config), "PATH": "/usr/bin:/bin", "REMOTE_ADDR": "127.0.0.1",
                "REQUEST_SCHEME": "http", "SERVER_NAME": "127.0.0.1"}
        get, with_cookie = dict(base, REQUEST_METHOD="GET"), dict(base, REQUEST_METHOD="GET", HTTP_COOKIE=cookie)

        def post(body, **extra):
            return dict(base, REQUEST_METHOD="POST", CONTENT_TYPE="application/x-www-form-urlencoded",
                        CONTENT_LENGTH=str(len(body)), **extra), body

        runs = [
            ("session", get, ""), ("session", with_cookie, ""), ("reset", dict(get, QUERY_STRING=site.token), ""),
            ("members", dict(with_cookie, PATH_INFO="/"), ""), ("account", with_cookie, ""),
            ("logout", dict(base, REQUEST_METHOD="POST", CONTENT_LENGTH="0", HTTP_COOKIE="lk_session=" + "x" * 43), ""),
            ("forgot", *post("email=known%40example.com")),
            ("login", *post(f"email=known%40example.com&password={PASSWORD}")),
        ]
        order = {}
        for index, (name, env, body) in enumerate(runs):
            out = work / f"{index}-{name}.%p.callgrind"
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", "--trace-children=no",
                            f"--callgrind-out-file={out}", str(cgi / name)],
                           input=body.encode(), env=env, capture_output=True, check=True)
            wait_drained(site)
            site.chown_var()
        # The worker `forgot` forked writes its profile when it exits, after the queue empties.
        deadline = time.monotonic() + 60
        while subprocess.run(["pgrep", "-f", str(work)], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                sys.exit("hot-functions.py: a profiled process is still running")
            time.sleep(0.2)
        for index, (name, _, _) in enumerate(runs):
            for profile in sorted(work.glob(f"{index}-{name}.*.callgrind")):
                for function in functions(profile):
                    order.setdefault(function, None)
        OUT.write_text("".join(f"{function}\n" for function in order if " " not in function and not function.startswith("0x")))
        print(f"{OUT.relative_to(ROOT)}: {len(order)} functions")
    finally:
        site.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
