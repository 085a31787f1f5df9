#!/usr/bin/env python3
"""Screenshots of the generated pages, served by a private Apache on loopback.

Builds a fresh default site (`latchkey init` + `build`), serves it with
`latchkey webserver apache --standalone`, and saves PNGs with headless Debian chromium:
every page (login, forgot, forgot-sent, reset, reset-done, expired, account, account-done),
one error page (error-404) and one outcome variant (login.invalid-login), each at 1280×900
(desktop) and 375×812 (mobile) in en and fr, named PAGE-LOCALE-desktop|mobile.png; plus login in
dark mode (`--force-dark-mode`, which makes chromium report `prefers-color-scheme: dark`;
checked with Chromium 156).

Usage: python3 scripts/screenshots.py [--out artifacts/screenshots] [--jobs N]
Prints each file written. Apache is always stopped at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures
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

# Pages shot at both sizes in both locales: every page, one error page, one outcome variant.
PAGES = ["login", "forgot", "forgot-sent", "reset", "reset-done", "expired", "account", "account-done",
         "error-404", "login.invalid-login"]
LOCALES = ["en", "fr"]  # en is the default locale (at the root); fr lives under /fr/
SIZES = {"desktop": DESKTOP, "mobile": MOBILE}


def page_path(page: str, locale: str) -> str:
    return f"/{page}.html" if locale == LOCALES[0] else f"/{locale}/{page}.html"


# (file name, URL path, (width, height), extra chromium flags)
SHOTS = [(f"{page}-{locale}-{size}.png", page_path(page, locale), dims, [])
         for page in PAGES for locale in LOCALES for size, dims in SIZES.items()]
SHOTS.append(("login-en-desktop-dark.png", "/login.html", DESKTOP, ["--force-dark-mode"]))


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
    parser.add_argument("--jobs", type=int, default=3, help="chromium processes at once (default: %(default)s)")
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
        for path in sorted({path for _, path, _, _ in SHOTS}):
            status = server.get(path).status
            if status != 200:
                raise SystemExit(f"{path} answered {status}, not 200\n{server.error_log()}")

        def take(shot):
            name, path, size, flags = shot
            target = out_dir / name
            screenshot(browser, server.url + path, target, size, flags)
            return target

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for target in pool.map(take, SHOTS):
                print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target, flush=True)
    finally:
        server.cleanup()
        site.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
