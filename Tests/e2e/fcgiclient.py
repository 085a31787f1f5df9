"""A small FastCGI 1.0 client for the tests: records, params and a whole request, over a unix
or TCP socket. Written from the spec, separately from the Swift side it tests, so the two
cannot share a misreading by sharing code."""
from __future__ import annotations

import socket
import struct

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, DATA = range(1, 9)
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
RESPONDER, AUTHORIZER, FILTER = 1, 2, 3
KEEP_CONN = 1
REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE = range(4)


def record(rtype: int, request_id: int, content: bytes = b"", padding: int | None = None) -> bytes:
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, request_id, len(content), padding, 0) + content + b"\0" * padding


def pair_length(n: int) -> bytes:
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def params(pairs: dict[str, str] | list[tuple[str, str]]) -> bytes:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    out = b""
    for name, value in items:
        n, v = name.encode(), value.encode()
        out += pair_length(len(n)) + pair_length(len(v)) + n + v
    return out


def decode_params(data: bytes) -> dict[str, str]:
    out, i = {}, 0
    while i < len(data):
        lengths = []
        for _ in range(2):
            if data[i] < 128:
                lengths.append(data[i]); i += 1
            else:
                lengths.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF); i += 4
        name = data[i:i + lengths[0]]; i += lengths[0]
        value = data[i:i + lengths[1]]; i += lengths[1]
        out[name.decode()] = value.decode()
    return out


def stream(rtype: int, request_id: int, data: bytes) -> bytes:
    """`data` as records of at most 65535 bytes, then the empty record that ends the stream."""
    out = b"".join(record(rtype, request_id, data[i:i + 65535]) for i in range(0, len(data), 65535))
    return out + record(rtype, request_id)


def begin(request_id: int = 1, role: int = RESPONDER, keep: bool = False) -> bytes:
    return record(BEGIN_REQUEST, request_id, struct.pack(">HB5x", role, KEEP_CONN if keep else 0))


def request_bytes(env: dict[str, str], body: bytes = b"", request_id: int = 1, role: int = RESPONDER, keep: bool = False) -> bytes:
    return begin(request_id, role, keep) + stream(PARAMS, request_id, params(env)) + stream(STDIN, request_id, body)


class Records:
    """Reads records from a connected socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self, n: int) -> bool:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def next(self):
        """(type, request_id, content), or None at end of stream."""
        if not self._fill(8):
            return None
        version, rtype, rid, length, padding, _ = struct.unpack(">BBHHBB", self.buffer[:8])
        assert version == 1, f"record version {version}"
        if not self._fill(8 + length + padding):
            raise AssertionError("connection closed mid-record")
        content = self.buffer[8:8 + length]
        self.buffer = self.buffer[8 + length + padding:]
        return rtype, rid, content


def read_response(records: Records, request_id: int = 1):
    """(stdout bytes, stderr bytes, app_status, protocol_status) of request `request_id`."""
    out, err = b"", b""
    while True:
        rec = records.next()
        if rec is None:
            raise AssertionError("connection closed before END_REQUEST")
        rtype, rid, content = rec
        if rid != request_id:
            continue
        if rtype == STDOUT:
            out += content
        elif rtype == STDERR:
            err += content
        elif rtype == END_REQUEST:
            app, proto = struct.unpack(">IB3x", content)
            return out, err, app, proto


def split_http(stdout: bytes):
    """(status, headers dict lowercased, body) of a CGI-style answer."""
    head, _, body = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body


def connect(address: str, timeout: float = 10.0) -> socket.socket:
    """`unix:PATH` or `HOST:PORT`."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[5:])
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    return sock


def fetch(address: str, env: dict[str, str], body: bytes = b"", role: int = RESPONDER):
    """One request on a new connection: (status, headers, body)."""
    with connect(address) as sock:
        sock.sendall(request_bytes(env, body, role=role))
        out, _, _, proto = read_response(Records(sock))
        assert proto == REQUEST_COMPLETE, proto
        return split_http(out)
