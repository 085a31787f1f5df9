"""Reading the mail Latchkey delivered, for the end-to-end tests.

`Mailbox(path)` reads either a Maildir (messages in `new/` and `cur/`; `tmp/` is work in
progress and never counted) or a plain folder of message files, as a test `sendmail` leaves
them (files whose names start with "." or end in ".tmp" are ignored: half-written). Messages
are parsed with the standard `email` package (`policy.default` → `EmailMessage`).

Delivery happens in a detached worker after the web answer, so use `wait_for(n)`, which polls
with a deadline, rather than reading once.
"""
from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import EmailMessage
from pathlib import Path

TOKEN_RE = r"[A-Za-z0-9_-]{43}"


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


class Mailbox:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def is_maildir(self) -> bool:
        return any((self.path / sub).is_dir() for sub in ("new", "cur", "tmp"))

    def files(self) -> list[Path]:
        """Delivered message files, oldest first (by modification time, then name)."""
        folders = [self.path / "new", self.path / "cur"] if self.is_maildir else [self.path]
        found = []
        for folder in folders:
            try:
                entries = list(folder.iterdir())
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(".tmp") or not entry.is_file():
                    continue
                try:
                    found.append((entry.stat().st_mtime_ns, entry.name, entry))
                except FileNotFoundError:
                    continue
        return [entry for _, _, entry in sorted(found)]

    def leftovers(self) -> list[Path]:
        """Files still in a Maildir's tmp/ (a delivery that never finished)."""
        try:
            return sorted((self.path / "tmp").iterdir()) if self.is_maildir else []
        except FileNotFoundError:
            return []

    def count(self) -> int:
        return len(self.files())

    def raw(self) -> list[bytes]:
        return [f.read_bytes() for f in self.files()]

    def messages(self) -> list[EmailMessage]:
        return [parse(data) for data in self.raw()]

    def wait_for(self, count: int, timeout: float = 5.0, interval: float = 0.05, to: str | None = None) -> list[EmailMessage]:
        """Polls until at least `count` messages are there (to `to`, when given); returns them
        all (oldest first).

        Fails the test, naming what is there, when the deadline passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if recipient(m) == to] if to else None
            have = len(found) if to else self.count()
            if have >= count:
                return found if to else self.messages()
            if time.monotonic() >= deadline:
                subjects = [str(m["Subject"]) for m in self.messages()]
                raise AssertionError(f"expected {count} message(s) in {self.path} within {timeout:.1f}s, "
                                     f"found {have}: {subjects}")
            time.sleep(interval)


# --- reading one message ----------------------------------------------------------------------
def leaf_parts(msg: EmailMessage) -> list[EmailMessage]:
    """The non-multipart parts, in order."""
    return [part for part in msg.walk() if not part.is_multipart()]


def part(msg: EmailMessage, content_type: str) -> EmailMessage:
    """The one leaf part of this content type (fails when there is not exactly one)."""
    found = [p for p in leaf_parts(msg) if p.get_content_type() == content_type]
    assert len(found) == 1, f"expected one {content_type} part, found {len(found)} " \
                            f"in {[p.get_content_type() for p in leaf_parts(msg)]}"
    return found[0]


def text(msg: EmailMessage) -> str:
    return part(msg, "text/plain").get_content()


def html(msg: EmailMessage) -> str:
    return part(msg, "text/html").get_content()


def reset_tokens(body: str, base_url: str) -> list[str]:
    """The tokens of every `{base_url}/cgi-bin/reset?token=T` link in `body`, in order."""
    pattern = re.escape(base_url.rstrip("/")) + r"/cgi-bin/reset\?token=(" + TOKEN_RE + r")(?![A-Za-z0-9_-])"
    return re.findall(pattern, body)


def reset_token(msg: EmailMessage, base_url: str) -> str:
    """The one reset token `msg` carries; the text and HTML parts must both link to it."""
    in_text = set(reset_tokens(text(msg), base_url))
    in_html = set(reset_tokens(html(msg), base_url))
    assert len(in_text) == 1, f"text part should hold one reset link to {base_url}, found {in_text}"
    assert in_html == in_text, f"HTML part links {in_html}, text part {in_text}"
    return in_text.pop()


def recipient(msg: EmailMessage) -> str:
    """The address (lower-cased) of the single To: recipient."""
    addresses = msg["To"].addresses
    assert len(addresses) == 1, f"To: should name one person, got {msg['To']!r}"
    return addresses[0].addr_spec.lower()
