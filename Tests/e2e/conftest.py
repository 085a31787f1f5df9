"""Shared fixtures for Latchkey's end-to-end tests.

Fixtures
- `latchkey(*args, config=None, ...)`: run the admin tool → CompletedProcess (text, captured).
- `make_site(**overrides)`: a freshly `init`ed site in its own 0755 folder under /tmp, with the
  overrides deep-merged into latchkey.json, built, var/ owned by www-data. Pass `_build=False`
  to skip the build. Removed at teardown.
- `default_site`: one built default site for the whole session. Read only: never edit it.
- `apache(site=None)`: starts a private Apache on a free 127.0.0.1 port for `site` (a new default
  site when omitted) and returns the `ApacheServer` (.url, .get, .post, .error_log()). Stopped at
  teardown.

The helpers themselves live in lkserver.py so scripts (screenshots) can reuse them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lkserver import (  # noqa: E402
    CGI_DIR, ROOT, ApacheServer, Site, deep_merge, latchkey_bin, run_latchkey,
)

__all__ = ["ApacheServer", "Site", "deep_merge", "run_latchkey", "ROOT", "CGI_DIR"]


def pytest_report_header(config):
    return f"latchkey binary: {latchkey_bin()}"


@pytest.fixture(scope="session")
def latchkey_path() -> str:
    path = latchkey_bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"latchkey binary not found at {path} (set LATCHKEY_BIN or run `make build`)")
    return path


@pytest.fixture
def latchkey(latchkey_path):
    """Runs the admin tool: latchkey("build", config=site.config) → CompletedProcess."""
    return run_latchkey


class _SiteFactory:
    def __init__(self):
        self.sites: list[Site] = []

    def __call__(self, _build: bool = True, **overrides) -> Site:
        site = Site.create(overrides, build=_build)
        self.sites.append(site)
        return site

    def cleanup(self):
        for site in self.sites:
            site.remove()


@pytest.fixture
def make_site(latchkey_path):
    factory = _SiteFactory()
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session")
def default_site(latchkey_path):
    """One built default site shared by read-only tests."""
    site = Site.create({}, build=True)
    yield site
    site.remove()


@pytest.fixture
def apache(make_site):
    """apache(site=None, cgi_dir=CGI_DIR) → a started ApacheServer; stopped at teardown."""
    servers: list[ApacheServer] = []

    def start(site: Site | None = None, cgi_dir=CGI_DIR) -> ApacheServer:
        server = ApacheServer(site or make_site(), cgi_dir=cgi_dir)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.cleanup()
