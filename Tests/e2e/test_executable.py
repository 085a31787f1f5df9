"""What the CGI executable is made of, which decides what every request pays before its own work.

A CGI starts a process per request, so the executable must be fully static (no dynamic loader
or NSS at start) and must not carry Foundation or libdispatch, whose initialisers would run in
every process.
"""
from __future__ import annotations

import subprocess

from lkserver import CGI_DIR

ENDPOINTS = ("login", "logout", "forgot", "reset", "account", "session", "members")


def test_every_endpoint_is_one_fully_static_executable():
    first = (CGI_DIR / ENDPOINTS[0]).read_bytes()
    for name in ENDPOINTS:
        assert (CGI_DIR / name).read_bytes() == first, f"cgi-bin/{name} differs from cgi-bin/{ENDPOINTS[0]}"
    headers = subprocess.run(["readelf", "--program-headers", "--dynamic", str(CGI_DIR / "reset")],
                             capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers, "the CGI asks for a dynamic loader"
    assert "There is no dynamic section" in headers, "the CGI has a dynamic section"


def test_the_cgi_carries_neither_foundation_nor_libdispatch():
    symbols = subprocess.run(["nm", str(CGI_DIR / "reset")], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in symbols.splitlines() if line.strip()]
    assert len(names) > 1000, "nm listed too few symbols to judge"
    assert any(name.startswith("sqlite3_") for name in names), "expected SQLite to be linked in"
    found = [name for name in names if "FoundationEssentials" in name or name.startswith("_dispatch_")
             or name == "libdispatch_init"]
    assert found == [], f"{len(found)} Foundation or libdispatch symbols, e.g. {found[:3]}"
