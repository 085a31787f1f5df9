"""A loopback SMTP server that keeps every message it receives, for the end-to-end tests.

Run with the Python that has aiosmtpd (Debian's python3-aiosmtpd is for /usr/bin/python3):

    /usr/bin/python3 Tests/e2e/smtpsink.py OUT_DIR

It listens on 127.0.0.1 (a free port), prints `listening PORT` on one line once ready, and
writes each message exactly as received (bytes of the DATA, dot-unstuffed) to OUT_DIR/N.eml,
atomically (written as .N.tmp, then renamed), with its envelope in OUT_DIR/N.json
({"mail_from", "rcpt_tos", "peer"}). SIGTERM stops it.

`SmtpSink` (imported by the tests) starts and stops it as a subprocess.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


class SmtpSink:
    """The sink as a subprocess: `start()` → .port; `messages()` → raw bytes, oldest first;
    `envelopes()`; `stop()` (always pair with start, e.g. in a fixture's teardown)."""

    def __init__(self, out_dir: Path, python: str = SYSTEM_PYTHON):
        self.out_dir = Path(out_dir)
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self, timeout: float = 10.0) -> "SmtpSink":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([self.python, __file__, str(self.out_dir)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"the SMTP sink did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()

    def _numbers(self) -> list[int]:
        return sorted(int(p.stem) for p in self.out_dir.glob("*.eml"))

    def messages(self) -> list[bytes]:
        return [(self.out_dir / f"{n}.eml").read_bytes() for n in self._numbers()]

    def envelopes(self) -> list[dict]:
        return [json.loads((self.out_dir / f"{n}.json").read_text()) for n in self._numbers()]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the SMTP server received {len(found)} message(s) within {timeout:.0f}s, "
                                     f"expected {count}")
            time.sleep(0.05)


def _serve(out_dir: Path) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Keep:
        def __init__(self):
            self.n = 0

        async def handle_DATA(self, server, session, envelope):
            self.n += 1
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode("utf-8", "surrogateescape")
            meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                    "peer": list(session.peer) if session.peer else None}
            (out_dir / f"{self.n}.json").write_text(json.dumps(meta))
            tmp = out_dir / f".{self.n}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, out_dir / f"{self.n}.eml")
            return "250 OK"

    handler = Keep()

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test", enable_SMTPUTF8=True),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
