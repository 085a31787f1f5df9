#!/usr/bin/env python3
"""Screenshots of the generated pages, served by a private Apache on loopback.

Builds a fresh default site (`latchkey init` + `build`), serves it with
`latchkey webserver apache --standalone`, and saves PNGs with headless Debian chromium:
login at 1280×900 (desktop) and 375×812 (mobile) in en and fr, forgot at desktop width,
and login in dark mode (`--force-dark-mode`, which makes chromium report
`prefers-color-scheme: dark`; checked with Chromium 156).

Usage: python3 scripts/screenshots.py [--out artifacts/screenshots]
Prints each file written. Apache is always stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from lkserver import ApacheServer, Site  # noqa: E402

DESKTOP = (1280, 900)
MOBILE = (375, 812)

# (file name, URL path, (width, height), extra chromium flags)
SHOTS = [
    ("login-en-desktop.png", "/login.html", DESKTOP, []),
    ("login-en-mobile.png", "/login.html", MOBILE, []),
    ("login-fr-desktop.png", "/fr/login.html", DESKTOP, []),
    ("login-fr-mobile.png", "/fr/login.html", MOBILE, []),
    ("forgot-en-desktop.png", "/forgot.html", DESKTOP, []),
    ("login-en-desktop-dark.png", "/login.html", DESKTOP, ["--force-dark-mode"]),
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("chromium not found: run scripts/install-deps.sh test")


def screenshot(browser: str, url: str, out: Path, size: tuple[int, int], flags: list[str]) -> None:
    profile = tempfile.mkdtemp(prefix="latchkey-chromium-")
    try:
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
               *flags, f"--screenshot={out}", url]
        if out.exists():
            out.unlink()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if result.returncode != 0 or not out.exists():
            raise SystemExit(f"chromium failed for {url} (exit {result.returncode}):\n{result.stderr[-2000:]}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="artifacts/screenshots",
                        help="folder for the PNGs, relative to the project root (default: %(default)s)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    if not out_dir.is_absolute():
        out_dir = ROOT / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    browser = chromium_binary()

    site = Site.create({}, build=True)
    server = ApacheServer(site)
    try:
        server.start()
        for name, path, size, flags in SHOTS:
            target = out_dir / name
            status = server.get(path).status
            if status != 200:
                raise SystemExit(f"{path} answered {status}, not 200\n{server.error_log()}")
            screenshot(browser, server.url + path, target, size, flags)
            print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target, flush=True)
    finally:
        server.cleanup()
        site.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
