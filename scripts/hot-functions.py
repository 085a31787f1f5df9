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
from bench import cgi_runs, make_site, wait_drained  # noqa: E402

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
        # What the benchmark times, with a known address for `forgot`: its worker then mails.
        runs = cgi_runs(site, cgi, work, forgot="known%40example.com")
        for index, (argv, env, stdin) in enumerate(runs.values()):
            with open(stdin or "/dev/null", "rb") as body:
                subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no",
                                f"--callgrind-out-file={work}/{index}.%p.callgrind", *argv],
                               stdin=body, env=env, capture_output=True, check=True)
            wait_drained(site)
            site.chown_var()
        # The worker `forgot` forked writes its profile when it exits, after the queue empties.
        deadline = time.monotonic() + 60
        while subprocess.run(["pgrep", "-f", str(work)], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                sys.exit("hot-functions.py: a profiled process is still running")
            time.sleep(0.2)
        order = {}
        for index in range(len(runs)):
            for profile in sorted(work.glob(f"{index}.*.callgrind")):
                for function in functions(profile):
                    if " " not in function and not function.startswith("0x"):  # "(below main)", addresses
                        order.setdefault(function, None)
        OUT.write_text("".join(f"{function}\n" for function in order))
        print(f"{OUT.relative_to(ROOT)}: {len(order)} functions")
    finally:
        site.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
