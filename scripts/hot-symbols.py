#!/usr/bin/env python3
"""Writes Sources/latchkey-cgi/hot-symbols.txt: the functions each CGI runs and the data it
touches, for the linker.

A CGI process lives about a millisecond, and here a page fault costs 3–5 µs. The kernel maps
an executable's code 64 KiB around each faulting address, so code spread over the 7 MB text
costs a fault per 64 KiB window it touches; and every page of writable data or zeroed memory
(`.data`, `.bss`) a process writes costs a fault of its own, often two (a read maps the zero
page, the first write then copies it). The build (Makefile) compiles each function and global
into its own section and hands this list to lld (`--symbol-ordering-file`), which puts the
listed functions side by side at the start of the text, and the listed data at the start of
its section.

The list is every function called, in the order callgrind first names them, then every data
symbol read or written, in the order valgrind's lackey first sees it touched, while the built
CGIs answer the requests the benchmark measures: `session` with and without a cookie, `reset`
with a live link, `account`, `members`, `logout`, `forgot` (with the worker it forks) and a
`login` with the right password. A symbol missing from it still links, only elsewhere; names
that no longer exist are ignored. Rerun it after changing what a CGI does
(`make build && python3 scripts/hot-symbols.py && make build`); it needs valgrind.
"""
import bisect
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

OUT = ROOT / "Sources" / "latchkey-cgi" / "hot-symbols.txt"


def functions(profile):
    """Function names in a callgrind profile, first mention first."""
    names = {}
    for line in profile.read_text(errors="replace").splitlines():
        match = re.match(r"c?fn=\(\d+\) (.+)", line)
        if match:
            names.setdefault(re.sub(r"'\d+$", "", match.group(1).strip()), None)
    return list(names)


class DataSymbols:
    """The executable's data symbols (initialised, read-only and zeroed), to name what an
    address in a lackey trace belongs to."""

    def __init__(self, binary):
        self.symbols = []
        listing = subprocess.run(["nm", "-n", "-S", "--defined-only", str(binary)],
                                 capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            fields = line.split()
            if len(fields) == 4 and fields[2] in "bBdDrRvV":
                self.symbols.append((int(fields[0], 16), max(int(fields[1], 16), 1), fields[3]))
        self.symbols.sort()
        self.starts = [start for start, _, _ in self.symbols]
        self.sizes = {name: size for _, size, name in self.symbols}

    def name(self, address):
        """The symbol `address` lies in, or None."""
        index = bisect.bisect_right(self.starts, address) - 1
        if index >= 0 and address < self.symbols[index][0] + self.symbols[index][1]:
            return self.symbols[index][2]
        return None

    def touched(self, trace):
        """Data symbols a lackey `--trace-mem` log loads, stores or modifies, first touch first."""
        names = {}
        low, high = self.starts[0], self.starts[-1] + self.symbols[-1][1]
        with open(trace, errors="replace") as lines:
            for line in lines:
                if line[:1] == " " and line[1:2] in "LSM":  # " L 0x…,8"; "I  0x…" is an instruction
                    address = int(line[3:].split(",")[0], 16)
                    if low <= address < high and (name := self.name(address)):
                        names.setdefault(name, None)
        return list(names)


def profile(tool, argv, env, stdin, out):
    """Runs `argv` under valgrind's `tool`, writing to files named `out` (%p for each process)."""
    options = {"callgrind": ["--demangle=no", f"--callgrind-out-file={out}"],
               "lackey": ["--trace-mem=yes", f"--log-file={out}"]}[tool]
    with open(stdin or "/dev/null", "rb") as body:
        subprocess.run(["valgrind", f"--tool={tool}", *options, *argv],
                       stdin=body, env=env, capture_output=True, check=True)


def wait_for_workers(work):
    """Until no process profiled from `work` runs: the worker `forgot` forked writes its
    profile when it exits, after the queue empties."""
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-f", str(work)], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            sys.exit("hot-symbols.py: a profiled process is still running")
        time.sleep(0.2)


def main():
    if not shutil.which("valgrind"):
        sys.exit("hot-symbols.py: needs valgrind (apt-get install valgrind)")
    cgi = ROOT / "cgi-bin"
    work = Path(tempfile.mkdtemp(prefix="latchkey-hot-", dir="/tmp"))
    work.chmod(0o755)
    site = make_site()
    try:
        # What the benchmark times, with a known address for `forgot`: its worker then mails.
        runs = cgi_runs(site, cgi, work, forgot="known%40example.com")
        for tool in ["callgrind", "lackey"]:
            for index, (argv, env, stdin) in enumerate(runs.values()):
                profile(tool, argv, env, stdin, f"{work}/{index}.%p.{tool}")
                wait_drained(site)
                site.chown_var()
            wait_for_workers(work)
        code, data = {}, {}
        symbols = DataSymbols(cgi / "session")
        for index in range(len(runs)):
            for path in sorted(work.glob(f"{index}.*.callgrind")):
                for function in functions(path):
                    if " " not in function and not function.startswith("0x"):  # "(below main)", addresses
                        code.setdefault(function, None)
            for path in sorted(work.glob(f"{index}.*.lackey")):
                for name in symbols.touched(path):
                    data.setdefault(name, None)
        # Buffers of a page or more (the runtime's first metadata pool, SQLite's scratch memory)
        # go after the small data, or each would split it and push the rest onto more pages.
        data = sorted(data, key=lambda name: symbols.sizes.get(name, 0) >= 4096)
        OUT.write_text("".join(f"{name}\n" for name in [*code, *data]))
        print(f"{OUT.relative_to(ROOT)}: {len(code)} functions, {len(data)} data symbols")
    finally:
        site.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
