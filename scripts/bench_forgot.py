#!/usr/bin/env python3
"""Does `POST /cgi-bin/forgot` take the same time for a known and an unknown address?

Starts a private site and Apache (Tests/e2e/lkserver.py), creates one customer, then sends
forgot requests alternately for that customer and for never-seen addresses (known, unknown,
known, …), one fresh connection per request, timing each full round trip with
time.perf_counter(). Throttle limits are raised so that nothing is throttled. Prints requests,
median and p90 for each side and the ratio of the medians.

Exit status: 0 when the run completed (whatever the numbers), 1 when it could not (no binary,
server would not start, an answer other than the expected 303).

    python3 scripts/bench_forgot.py [--requests N] [--warmup N]
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from lkserver import ApacheServer, Site, latchkey_bin, site_processes  # noqa: E402

CUSTOMER = "bench.customer@example.com"
GENEROUS = {"count": 100000, "window": "1h"}


def timed_forgot(server: ApacheServer, email: str) -> tuple[float, int, str]:
    """One POST on its own connection: (seconds, status, Location)."""
    body = urllib.parse.urlencode({"email": email, "locale": "en"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    start = time.perf_counter()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("POST", "/cgi-bin/forgot", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - start
        return elapsed, resp.status, resp.getheader("Location", "")
    finally:
        conn.close()


def wait_for_workers(site: Site, timeout: float = 2.0) -> None:
    """Waits until the previous request's detached after-work has ended, so each request is
    timed on an idle machine and not while the previous request's mail is being written
    (which favours whichever side follows the cheaper request)."""
    deadline = time.monotonic() + timeout
    while site_processes(site) and time.monotonic() < deadline:
        time.sleep(0.002)


def count_files(folder: Path) -> int:
    try:
        return sum(1 for entry in folder.iterdir() if entry.is_file())
    except FileNotFoundError:
        return 0


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def run(requests: int, warmup: int) -> int:
    binary = latchkey_bin()
    if not os.access(binary, os.X_OK):
        print(f"bench_forgot: latchkey binary not found at {binary} (run `make build`)", file=sys.stderr)
        return 1
    site = Site.create({"throttle": {"forgot_per_address": GENEROUS, "forgot_per_ip": GENEROUS}}, build=False)
    server = ApacheServer(site)
    try:
        server.start()
        added = site.latchkey("user", "add", CUSTOMER, "--name", "Bench Customer", "--no-email")
        site.chown_var()
        if added.returncode != 0:
            print(f"bench_forgot: user add failed: {added.stderr.strip()}", file=sys.stderr)
            return 1
        expected = f"{server.url}/forgot-sent.html"
        times = {"known": [], "unknown": []}
        started = time.perf_counter()
        for i in range(warmup + requests):
            for side in ("known", "unknown"):
                email = CUSTOMER if side == "known" else f"nobody-{i}-{os.getpid()}@example.com"
                wait_for_workers(site)
                elapsed, status, location = timed_forgot(server, email)
                if status != 303 or location != expected:
                    print(f"bench_forgot: request {i} ({side}) answered {status} {location!r}, "
                          f"expected 303 {expected!r}\n{server.error_log()[-2000:]}", file=sys.stderr)
                    return 1
                if i >= warmup:
                    times[side].append(elapsed)
        wall = time.perf_counter() - started

        known, unknown = times["known"], times["unknown"]
        rows = [("requests", f"{len(known)}", f"{len(unknown)}"),
                ("median ms", f"{statistics.median(known) * 1000:.2f}", f"{statistics.median(unknown) * 1000:.2f}"),
                ("p90 ms", f"{p90(known) * 1000:.2f}", f"{p90(unknown) * 1000:.2f}")]
        print(f"POST /cgi-bin/forgot, known vs unknown address, interleaved, one connection per request, each after the previous request's background work "
              f"({warmup} warm-up pairs not counted; {wall:.1f} s in all)")
        print(f"{'':<12}{'known':>10}{'unknown':>10}")
        for label, k, u in rows:
            print(f"{label:<12}{k:>10}{u:>10}")
        print(f"ratio of medians (known / unknown): {statistics.median(known) / statistics.median(unknown):.3f}")
        # The known side did real work after each answer: count the reset emails it left.
        maildir, wanted = site.var / "mail" / "new", warmup + requests
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and count_files(maildir) < wanted:
            time.sleep(0.1)
        print(f"reset emails delivered to the customer: {count_files(maildir)} of {wanted} requests")
        return 0
    except Exception as error:  # the run itself failed
        print(f"bench_forgot: {error}\n{server.error_log()[-2000:]}", file=sys.stderr)
        return 1
    finally:
        server.cleanup()
        site.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per side (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed pairs first (default 10)")
    args = parser.parse_args()
    return run(max(1, args.requests), max(0, args.warmup))


if __name__ == "__main__":
    sys.exit(main())
