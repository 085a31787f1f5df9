"""Members files for the gate and server tests: a large file whose every slice can be checked
byte for byte, made an hour old (Apache marks the ETag of a file changed within the last second
weak, and a weak ETag never satisfies If-Range, RFC 9110 §13.1.5); and the customer who reads them."""
from __future__ import annotations

import os
import time
from pathlib import Path

from lkserver import add_customer


def pattern_file(path: Path, size: int) -> Path:
    """`size` bytes of 0, 1, …, 255 repeated (size a multiple of 1 MiB)."""
    block = bytes(range(256)) * 4096
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    return path


def an_hour_old(*paths: Path) -> None:
    """Readable by the web server's user, and last changed an hour ago."""
    hour_ago = time.time() - 3600
    for path in paths:
        os.chmod(path, 0o644)
        os.utime(path, (hour_ago, hour_ago))


def part(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def viewer_cookie(srv, password: str, offer: str = "gold") -> str:
    """`lk_session=…` of viewer@example.com, a customer with `offer` logged in through `srv`."""
    add_customer(srv.site, "viewer@example.com", password, offer=offer)
    login = srv.post("/cgi-bin/login", {"email": "viewer@example.com", "password": password, "locale": "en"})
    return next(h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session="))


def get(srv, path, method="GET", **headers):
    """A request with the viewer's cookie (`srv.cookie`), slow enough for a large file."""
    return srv.request(method, path, headers={"Cookie": srv.cookie, **headers}, timeout=120)
