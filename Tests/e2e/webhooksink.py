"""A loopback HTTP endpoint that receives Latchkey's outbound events, for the end-to-end tests.

`WebhookSink(secret)` is a threaded HTTP server on 127.0.0.1 (a free port, or `port=`) running
in a thread of the test process. Every POST it gets is kept as a `Received` (lower-case headers,
the body exactly as sent, the status answered) and checked at once with the `standardwebhooks`
library (`Webhook(secret).verify(body, headers)`), independently of the product's own signing
code; what fails to verify is answered 400 and listed in `.unverified`. Tests assert that list
stays empty (`check()`).

It answers a programmable sequence: `answer(500, 410, then=200)` makes the next two requests get
500 and 410 and every later one 200; `delay` (seconds) makes it a slow endpoint, counting each
request in `arrivals` as it comes and answering only after the delay. `url` is where to point a `webhooks` entry; `wait_for(n)`
polls until n requests came (or n acknowledged ones, with `acknowledged=True`). Always pair
`start()` with `stop()`, or use `with`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    """One request the sink got."""

    headers: dict
    body: bytes
    status: int
    event: dict | None = None          # the verified payload (None when it did not verify)
    error: str = ""                    # why it did not verify
    at: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def type(self) -> str:
        return (self.event or {}).get("type", "")

    @property
    def data(self) -> dict:
        return (self.event or {}).get("data", {})

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


class WebhookSink:
    def __init__(self, secret: str, port: int = 0, path: str = "/hook"):
        self.secret = secret
        self.path = path
        self._port = port
        self._lock = threading.Lock()
        self._answers: list[int] = []
        self._then = 200
        self.delay = 0.0
        self.arrivals = 0
        self.received: list[Received] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "WebhookSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                sink._handle(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"webhook-sink-{self.port}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "the webhook sink's thread did not stop"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    # --- behaviour ----------------------------------------------------------------------------
    def answer(self, *statuses: int, then: int = 200) -> None:
        """The next requests get `statuses`, in order; every one after them gets `then`."""
        with self._lock:
            self._answers = list(statuses)
            self._then = then

    def _next_status(self) -> int:
        with self._lock:
            return self._answers.pop(0) if self._answers else self._then

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    break
                body += handler.rfile.read(size)
                handler.rfile.readline()
        else:
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.arrivals += 1
        if self.delay:
            time.sleep(self.delay)
        status = self._next_status()
        received = Received(headers=headers, body=body, status=status)
        try:
            received.event = Webhook(self.secret).verify(body, headers)
        except Exception as error:  # anything that fails to verify is the product's fault
            received.error = f"{type(error).__name__}: {error}"
            received.status = status = 400
        if handler.path != self.path:
            received.error = received.error or f"posted to {handler.path}, not {self.path}"
        with self._lock:
            self.received.append(received)
        answer = json.dumps({"status": status}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    # --- reading what came ----------------------------------------------------------------------
    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def acknowledged(self) -> list[Received]:
        return [r for r in self.all() if r.acknowledged]

    @property
    def unverified(self) -> list[Received]:
        return [r for r in self.all() if r.error]

    def check(self) -> None:
        """Fails unless every request verified and no webhook-id was acknowledged twice."""
        bad = self.unverified
        assert not bad, [(r.error, r.headers, r.body[:200]) for r in bad]
        ids = [r.id for r in self.acknowledged()]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        assert not twice, f"acknowledged more than once: {twice}"

    def wait_for(self, count: int, timeout: float = 10.0, acknowledged: bool = False,
                 where=lambda r: True) -> list[Received]:
        """Polls until at least `count` requests (matching `where`) came; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in (self.acknowledged() if acknowledged else self.all()) if where(r)]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"the webhook sink got {len(got)} of {count} requests within {timeout:.0f}s: "
                                     f"{[(r.type, r.status, r.id) for r in self.all()]}")
            time.sleep(0.02)
