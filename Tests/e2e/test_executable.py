"""What the CGI executable is made of, which decides what every request pays before its own work.

A CGI starts a process per request, so the executable must be fully static (no dynamic loader
or NSS at start) and must not carry Foundation or libdispatch, whose initialisers would run in
every process.
"""
from __future__ import annotations

import subprocess

import pytest

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


def hot_symbols():
    """Sources/latchkey-cgi/hot-symbols.txt, and the reset CGI's symbols: name → (address, nm kind)."""
    listed = (CGI_DIR.parent / "Sources" / "latchkey-cgi" / "hot-symbols.txt").read_text().split("\n")
    symbols = {}
    for line in subprocess.run(["nm", "--defined-only", str(CGI_DIR / "reset")],
                               capture_output=True, text=True, check=True).stdout.splitlines():
        address, kind, name = line.split(maxsplit=2)
        symbols.setdefault(name, (int(address, 16), kind))
    return [name for name in listed if name], symbols


def test_the_code_a_request_runs_sits_together():
    """The linker follows Sources/latchkey-cgi/hot-symbols.txt, so a request faults in fewer
    64 KiB windows of code (the kernel maps code a window at a time); and the list still names
    the code that is there (when much of it is gone, rerun scripts/hot-symbols.py)."""
    listed, symbols = hot_symbols()
    text = {name: address for name, (address, kind) in symbols.items() if kind in "tTwW"}
    functions = [name for name in listed if name in text]
    assert len(functions) > 1000, f"hot-symbols.txt lists only {len(functions)} functions in the CGI"
    named = [name for name in listed if name in symbols]
    assert len(named) >= 0.9 * len(listed), \
        f"only {len(named)} of {len(listed)} listed symbols are in the CGI: rerun scripts/hot-symbols.py"
    windows = {text[name] >> 16 for name in functions}
    every = {address >> 16 for address in text.values()}
    # Unordered (as gold or lld lay it out by default), they touch three quarters of the text's
    # windows; ordered, under half. (SQLite and glibc archives move a whole object at a time.)
    assert len(windows) < 0.6 * len(every), f"the listed functions lie in {len(windows)} of {len(every)} windows"


@pytest.mark.parametrize("kinds", ["bB", "dD"], ids=["zeroed", "initialised"])
def test_the_data_a_request_touches_sits_together(kinds):
    """The data a request touches is listed too and laid out first in its section, so a
    request writes fewer pages of `.bss` and `.data` (each a fault of its own). Left where the
    linker found it, the listed symbols lie on about half the pages holding such symbols;
    ordered, on about a third."""
    listed, symbols = hot_symbols()
    hot = {symbols[name][0] >> 12 for name in listed if name in symbols and symbols[name][1] in kinds}
    every = {address >> 12 for address, kind in symbols.values() if kind in kinds}
    assert len(hot) > 10, f"hot-symbols.txt lists data on only {len(hot)} pages"
    assert len(hot) < 0.4 * len(every), f"the listed data lies on {len(hot)} of {len(every)} pages"
