#!/usr/bin/env python3
"""Login timing benchmark (`make bench`): does a failed login take the same time whatever the
reason? SPEC §8: "login gives the same answer and takes the same time whether or not the
address exists".

Starts its own site and a private Apache on loopback, creates a customer with access, a contact
and a customer whose access was revoked, raises the throttle limits out of the way, then times
interleaved login POSTs for each failure reason, a successful login, and GET /cgi-bin/session.
Also times one raw Argon2id hash at the default parameters (argon2-cffi, when installed).

Usage: python3 scripts/bench_login.py [--rounds N] [--seconds S] [--session-requests N]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "e2e"))

from lkserver import ApacheServer, Site  # noqa: E402

PASSWORD = "correct horse battery"
FAILURES = [
    ("wrong password", "ann@example.com", "not the password at all"),
    ("unknown address", "nobody@example.com", PASSWORD),
    ("contact", "con@example.com", PASSWORD),
    ("revoked access", "rev@example.com", PASSWORD),
]


def ms(seconds: float) -> float:
    return seconds * 1000.0


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def admin(site: Site, *args, stdin=None) -> str:
    result = site.latchkey(*args, input=stdin)
    if result.returncode != 0:
        raise SystemExit(f"latchkey {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def login(srv: ApacheServer, address: str, password: str):
    return srv.post("/cgi-bin/login", {"email": address, "password": password, "locale": "en"})


def argon2_row() -> str:
    try:
        from argon2.low_level import Type, hash_secret_raw
    except ImportError:
        return "argon2id raw hash (argon2-cffi)     skipped: argon2-cffi not installed"
    samples = []
    for _ in range(21):
        elapsed, _ = timed(lambda: hash_secret_raw(PASSWORD.encode(), b"0123456789abcdef", time_cost=2,
                                                   memory_cost=19 * 1024, parallelism=1, hash_len=32, type=Type.ID))
        samples.append(elapsed)
    return (f"argon2id raw hash (t=2, m=19 MiB, p=1)  median {ms(statistics.median(samples)):7.1f} ms"
            f"   p90 {ms(p90(samples)):7.1f} ms   (n={len(samples)}, in-process, argon2-cffi)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="least number of rounds (one POST per reason each)")
    parser.add_argument("--seconds", type=float, default=30.0, help="keep going until this much time has passed")
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--session-requests", type=int, default=200)
    args = parser.parse_args()

    print("setting up a site and a private Apache…", flush=True)
    site = Site.create({"throttle": {"login_failures_per_account": {"count": 1000000, "window": "1s"},
                                     "login_failures_per_ip": {"count": 1000000, "window": "1s"},
                                     }}, build=True)
    srv = ApacheServer(site)
    try:
        srv.start()
        admin(site, "offer", "add", "gold", "--name", "Gold")
        for address in ("ann@example.com", "rev@example.com"):
            admin(site, "user", "add", address, "--name", "Bench", "--no-email", "--offer", "gold")
            admin(site, "user", "set-password", address, stdin=PASSWORD + "\n")
        admin(site, "access", "revoke", "rev@example.com", "gold")
        admin(site, "contact", "add", "con@example.com", "--name", "Contact")
        site.chown_var()

        # Warm up: the first unknown-address login makes and stores the dummy hash; caches fill.
        for _ in range(3):
            for _reason, address, password in FAILURES:
                login(srv, address, password)
        first = login(srv, "ann@example.com", PASSWORD)
        if first.status != 303 or not first.headers.get("location", "").endswith("/members/"):
            raise SystemExit(f"a good login failed: {first.status} {first.headers.get('location')}")

        samples: dict[str, list[float]] = {reason: [] for reason, _a, _p in FAILURES}
        samples["successful login"] = []
        locations = {}
        cases = FAILURES + [("successful login", "ann@example.com", PASSWORD)]
        started = time.monotonic()
        rounds = 0
        while rounds < args.max_rounds and (rounds < args.rounds or time.monotonic() - started < args.seconds):
            order = cases[:]
            random.shuffle(order)
            for reason, address, password in order:
                elapsed, resp = timed(lambda: login(srv, address, password))
                samples[reason].append(elapsed)
                locations.setdefault(reason, set()).add((resp.status, urllib.parse.urlsplit(resp.headers.get("location", "")).path))
            rounds += 1
        total = time.monotonic() - started

        cookie = first.all("set-cookie")[0].split(";", 1)[0]
        session_samples = []
        for _ in range(args.session_requests):
            elapsed, resp = timed(lambda: srv.get("/cgi-bin/session", headers={"Cookie": cookie}))
            if resp.status != 204:
                raise SystemExit(f"GET /cgi-bin/session answered {resp.status} with a valid cookie")
            session_samples.append(elapsed)

        print(f"\nLogin POSTs through Apache on loopback: {rounds} interleaved rounds in {total:.1f} s\n")
        print(f"{'case':<22}{'n':>5}{'median ms':>12}{'p90 ms':>10}   answer")
        for reason, _a, _p in FAILURES:
            s = samples[reason]
            answer = ", ".join(f"{st} {path}" for st, path in sorted(locations[reason]))
            print(f"{reason:<22}{len(s):>5}{ms(statistics.median(s)):>12.1f}{ms(p90(s)):>10.1f}   {answer}")
        medians = {reason: statistics.median(samples[reason]) for reason, _a, _p in FAILURES}
        slow = max(medians, key=medians.get)
        fast = min(medians, key=medians.get)
        print(f"\nlargest ratio between failure medians: {medians[slow] / medians[fast]:.3f} "
              f"({slow} / {fast})")
        ok = samples["successful login"]
        print(f"\n{'successful login':<22}{len(ok):>5}{ms(statistics.median(ok)):>12.1f}{ms(p90(ok)):>10.1f}")
        print(f"{'GET /cgi-bin/session':<22}{len(session_samples):>5}{ms(statistics.median(session_samples)):>12.1f}"
              f"{ms(p90(session_samples)):>10.1f}")
        print()
        print(argon2_row())
        return 0
    finally:
        srv.cleanup()
        site.remove()


if __name__ == "__main__":
    sys.exit(main())
