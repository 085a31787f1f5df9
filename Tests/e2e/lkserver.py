"""Helpers shared by the end-to-end tests and scripts/screenshots.py.

- `run_latchkey(...)`: run the admin tool, captured, as text.
- `Site`: a scaffolded site folder (init, edit latchkey.json, build, clean up).
- `ApacheServer`: a private Apache on 127.0.0.1 serving a site, from
  `latchkey webserver apache --standalone`.

Everything a served site needs lives under one 0755 folder in /tmp (never
under pytest's tmp_path: that sits below a 0700 folder, and Apache's
www-data workers could not traverse it).
"""
from __future__ import annotations

import copy
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CGI_DIR = ROOT / "cgi-bin"
WEB_USER = "www-data"


def latchkey_bin() -> str:
    """$LATCHKEY_BIN, else the release build, else the debug build."""
    env = os.environ.get("LATCHKEY_BIN")
    if env:
        return env
    release = ROOT / ".build" / "release" / "latchkey"
    debug = ROOT / ".build" / "debug" / "latchkey"
    if release.exists() or not debug.exists():
        return str(release)
    return str(debug)


def run_latchkey(*args, config=None, cwd=None, env=None, input=None, timeout=60):
    """Runs `latchkey ARGS` (with `--config CONFIG` appended when given).

    Returns the CompletedProcess (text mode, stdout/stderr captured); never raises on a
    non-zero exit.
    """
    cmd = [latchkey_bin(), *map(str, args)]
    if config is not None:
        cmd += ["--config", str(config)]
    full_env = dict(os.environ)
    full_env.pop("LATCHKEY_CONFIG", None)
    if env:
        full_env.update(env)
    return subprocess.run(cmd, cwd=cwd, env=full_env, input=input, text=True,
                          capture_output=True, timeout=timeout)


def deep_merge(base: dict, overrides: dict) -> dict:
    """A copy of `base` with `overrides` applied; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def served_tempdir(prefix: str = "latchkey-") -> Path:
    """A fresh folder under /tmp that the web server's user can traverse (0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


class BuildFailed(AssertionError):
    pass


class Site:
    """A site folder made by `latchkey init`, inside its own 0755 temp folder.

    `top` is the temp folder (removed by `remove()`), `dir` the site folder, `config` its
    latchkey.json, `public` the output folder (as configured by `output`).
    """

    def __init__(self, top: Path | None = None):
        self.top = Path(top) if top else served_tempdir()
        self.dir = self.top / "site"
        self.config = self.dir / "latchkey.json"
        self.init_result = None
        self.build_result = None

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def create(cls, overrides: dict | None = None, build: bool = True) -> "Site":
        """init + overrides + (build) + chown var to www-data. Raises if init or build fails."""
        site = cls()
        try:
            site.init_result = run_latchkey("init", site.dir)
            if site.init_result.returncode != 0:
                raise AssertionError(f"latchkey init failed ({site.init_result.returncode}):\n"
                                     f"{site.init_result.stdout}{site.init_result.stderr}")
            if overrides:
                site.update_config(**overrides)
            if build:
                site.build(check=True)
            site.chown_var()
        except BaseException:
            site.remove()
            raise
        return site

    def remove(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)

    # --- config -----------------------------------------------------------------------------
    def read_config(self) -> dict:
        return json.loads(self.config.read_text(encoding="utf-8"))

    def write_config(self, data: dict) -> None:
        self.config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def update_config(self, **overrides) -> dict:
        data = deep_merge(self.read_config(), overrides)
        self.write_config(data)
        return data

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.dir / path

    @property
    def public(self) -> Path:
        return self.resolve(self.read_config().get("output", "public"))

    @property
    def var(self) -> Path:
        return self.dir / "var"

    @property
    def locales(self) -> list[str]:
        return list(self.read_config()["locales"])

    # --- commands ---------------------------------------------------------------------------
    def latchkey(self, *args, **kwargs):
        """`latchkey ARGS --config THIS_SITE`."""
        return run_latchkey(*args, config=self.config, **kwargs)

    def build(self, check: bool = False):
        result = self.latchkey("build")
        self.build_result = result
        if check and result.returncode != 0:
            raise BuildFailed(f"latchkey build failed (exit {result.returncode}):\n"
                              f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def chown_var(self) -> None:
        """The CGIs run as www-data and write the database (and its -wal/-shm) in var/."""
        try:
            user = pwd.getpwnam(WEB_USER)
        except KeyError:
            return
        if os.geteuid() != 0 or not self.var.exists():
            return
        for folder, dirs, files in os.walk(self.var):
            os.chown(folder, user.pw_uid, user.pw_gid)
            for name in files:
                os.chown(os.path.join(folder, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response(tuple):
    """(status, headers, body); headers is a dict with lower-case keys (repeated headers
    joined with ", "), `header_list` keeps every (name, value) pair as sent."""

    def __new__(cls, status, headers, body, header_list):
        self = super().__new__(cls, (status, headers, body))
        self.header_list = header_list
        return self

    @property
    def status(self) -> int:
        return self[0]

    @property
    def headers(self) -> dict:
        return self[1]

    @property
    def body(self) -> bytes:
        return self[2]

    @property
    def text(self) -> str:
        return self[2].decode("utf-8", errors="replace")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]


class ApacheServer:
    """A private Apache serving `site` on 127.0.0.1:PORT, with CGIs from `cgi_dir`.

    `start()` points the site's base_url at the chosen port and rebuilds it first, so
    every generated link matches the server. Always pair with `stop()` (or use `with`).
    """

    START_TIMEOUT = 10.0
    STOP_TIMEOUT = 10.0

    def __init__(self, site: Site, cgi_dir: Path | str = CGI_DIR, port: int | None = None,
                 runtime_dir: Path | None = None):
        self.site = site
        self.cgi_dir = Path(cgi_dir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._own_runtime = runtime_dir is None
        self.runtime_dir = Path(runtime_dir) if runtime_dir else served_tempdir("latchkey-run-")
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o755)
        self.conf = self.runtime_dir / "apache2.conf"
        self.pid_file = self.runtime_dir / "apache2.pid"
        self.started = False

    scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def _webserver_args(self) -> list:
        """Extra arguments for `latchkey webserver apache` (subclasses add TLS)."""
        return []

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> "ApacheServer":
        self.site.update_config(base_url=self.url)
        self.site.build(check=True)
        self.site.chown_var()
        result = run_latchkey("webserver", "apache", "--standalone",
                              "--listen", f"{self.host}:{self.port}",
                              "--runtime-dir", self.runtime_dir,
                              "--cgi-dir", self.cgi_dir,
                              *self._webserver_args(),
                              config=self.site.config)
        if result.returncode != 0:
            raise AssertionError(f"latchkey webserver apache failed ({result.returncode}): {result.stderr}")
        self.conf.write_text(result.stdout, encoding="utf-8")
        self._before_launch(result.stdout)
        start = subprocess.run(["apache2", "-f", str(self.conf), "-k", "start"],
                               capture_output=True, text=True, timeout=30)
        if start.returncode != 0:
            raise AssertionError(f"apache2 -k start failed ({start.returncode}):\n{start.stdout}{start.stderr}\n"
                                 f"error.log:\n{self.error_log()}")
        self.started = True
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"Apache did not answer on {self.url} within "
                                         f"{self.START_TIMEOUT:.0f}s\nerror.log:\n{self.error_log()}")
                time.sleep(0.05)
        return self

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie still answers kill(0); treat it as gone.
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def _request_stop(self, pid: int | None) -> None:
        """Asks the server to stop; other servers override this step."""
        subprocess.run(["apache2", "-f", str(self.conf), "-k", "stop"],
                       capture_output=True, text=True, timeout=30)

    def _before_launch(self, config_text: str) -> None:
        """Starts what the config needs running first (`latchkey serve`); nothing for plain CGI."""

    def _after_stop(self) -> None:
        """Cleans up helpers the server needed (nginx's fcgiwrap); nothing for Apache."""

    def stop(self) -> None:
        """Asks the server to stop, waits for its pid to go, and kills it if it lingers."""
        pid = self._pid()
        try:
            if pid or self.conf.exists():
                self._request_stop(pid)
            if pid:
                deadline = time.monotonic() + self.STOP_TIMEOUT
                while self._alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self._alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        finally:
            self._after_stop()
            self.started = False

    def cleanup(self) -> None:
        """Stop, then remove the runtime folder if this server made it."""
        try:
            self.stop()
        finally:
            if self._own_runtime:
                shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # --- HTTP -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30) -> Response:
        """One request, redirects NOT followed."""
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            pairs = resp.getheaders()
        finally:
            conn.close()
        merged: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(resp.status, merged, data, pairs)

    def get(self, path: str, headers=None) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data=None, headers=None) -> Response:
        """POST `data` (a dict or list of pairs → urlencoded; str/bytes as is)."""
        hdrs = dict(headers or {})
        if isinstance(data, (dict, list, tuple)):
            body = urllib.parse.urlencode(data).encode()
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = data or b""
        return self.request("POST", path, body=body, headers=hdrs)

    # --- logs -------------------------------------------------------------------------------
    def error_log(self) -> str:
        try:
            return (self.runtime_dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def access_log(self) -> str:
        try:
            return (self.runtime_dir / "access.log").read_text(errors="replace")
        except OSError:
            return ""


class HttpsApacheServer(ApacheServer):
    """An ApacheServer speaking HTTPS (mod_ssl) with a throwaway self-signed certificate for
    127.0.0.1, made in the runtime folder. base_url becomes https://127.0.0.1:PORT, so the
    CGIs see HTTPS=on; requests verify the server against that certificate."""

    scheme = "https"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cert = self.runtime_dir / "cert.pem"
        self.key = self.runtime_dir / "key.pem"

    def _make_certificate(self) -> None:
        if self.cert.exists() and self.key.exists():
            return
        made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                               "-subj", f"/CN={self.host}", "-addext", f"subjectAltName=IP:{self.host}",
                               "-days", "1", "-keyout", str(self.key), "-out", str(self.cert)],
                              capture_output=True, text=True, timeout=60)
        if made.returncode != 0:
            raise AssertionError(f"openssl req failed ({made.returncode}): {made.stderr}")
        self.key.chmod(0o600)

    def _webserver_args(self) -> list:
        self._make_certificate()
        return ["--tls-cert", self.cert, "--tls-key", self.key]

    def ssl_context(self):
        import ssl
        return ssl.create_default_context(cafile=str(self.cert))

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context())


# --- running a CGI directly, as the web server would ----------------------------------------------
# For tests that need control a web server does not give: a CONTENT_LENGTH that lies, a body cut
# short, a process killed half-way. The CGI runs as www-data (when we are root) so every file it
# writes in var/ stays the web server's.

class CGIAnswer:
    """A CGI's parsed answer (RFC 3875 §6): status, headers (lower-case dict, repeats joined with
    ", "), header_list (every pair as sent), body; plus its stderr and exit status."""

    def __init__(self, raw: bytes, stderr: bytes = b"", returncode: int | None = None, elapsed: float = 0.0):
        self.raw = raw
        self.stderr = stderr.decode("utf-8", errors="replace")
        self.returncode = returncode
        self.elapsed = elapsed
        self.status, self.headers, self.header_list, self.body = parse_cgi_output(raw)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def __repr__(self) -> str:
        return (f"CGIAnswer(status={self.status}, location={self.headers.get('location')!r}, "
                f"exit={self.returncode}, stderr={self.stderr.strip()[:200]!r}, body={self.body[:80]!r})")


def parse_cgi_output(raw: bytes):
    """(status, headers, header_list, body) of a CGI answer; status 0 when it is not one
    (nothing written, or no blank line after the headers)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in raw:
            head, body = raw.split(separator, 1)
            break
    else:
        return 0, {}, [], raw
    pairs = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            pairs.append((name.strip(), value.strip()))
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    status = 200
    if "status" in headers:
        try:
            status = int(headers["status"].split()[0])
        except (ValueError, IndexError):
            status = 0
    elif "location" in headers:
        status = 302
    return status, headers, pairs, body


AUTO = object()


def web_user_kwargs() -> dict:
    """Popen arguments that run the child as www-data when we are root; {} otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(WEB_USER)
    except KeyError:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def cgi_environ(site: Site, endpoint: str, method: str = "POST", body: bytes = b"", *,
                content_type: str | None = "application/x-www-form-urlencoded", content_length=AUTO,
                query: str = "", cookie=None, origin=None, remote_addr: str = "192.0.2.1",
                extra: dict | None = None) -> dict:
    """The environment a web server gives `cgi-bin/ENDPOINT` for one request (RFC 3875 §4.1).
    `content_length`: AUTO (the body's length), None (left out) or any value (sent as is)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "latchkey-tests",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REQUEST_SCHEME": "http",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": f"/cgi-bin/{endpoint}",
        "SCRIPT_FILENAME": str(CGI_DIR / endpoint),
        "QUERY_STRING": query,
        "REMOTE_ADDR": remote_addr,
        "HTTP_HOST": "127.0.0.1",
        "LATCHKEY_CONFIG": str(site.config),
    }
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    if content_length is AUTO:
        env["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        env["CONTENT_LENGTH"] = str(content_length)
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    if origin is not None:
        env["HTTP_ORIGIN"] = origin
    env.update(extra or {})
    return env


def start_cgi(site: Site, endpoint: str, method: str = "POST", body: bytes = b"", cgi_dir=CGI_DIR,
              **env_kwargs) -> subprocess.Popen:
    """Starts `cgi-bin/ENDPOINT` for one request (as www-data), stdin/stdout/stderr piped. The
    caller writes the body (or uses `communicate(body)`)."""
    env = cgi_environ(site, endpoint, method, body, **env_kwargs)
    return subprocess.Popen([str(Path(cgi_dir) / endpoint)], env=env, cwd=str(cgi_dir),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **web_user_kwargs())


def run_cgi(site: Site, endpoint: str, method: str = "POST", body: bytes | str = b"", timeout: float = 30,
            **env_kwargs) -> CGIAnswer:
    """Runs `cgi-bin/ENDPOINT` once with `body` on stdin; returns its parsed answer."""
    if isinstance(body, str):
        body = body.encode()
    started = time.monotonic()
    proc = start_cgi(site, endpoint, method, body, **env_kwargs)
    try:
        out, err = proc.communicate(body, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"cgi-bin/{endpoint} did not finish within {timeout}s: {err[-500:]!r}")
    return CGIAnswer(out, err, proc.returncode, time.monotonic() - started)


# --- the database, read with the sqlite3 CLI as the web server's user ------------------------------
def sqlite_cmd(site: Site, *args) -> list[str]:
    cmd = ["sqlite3", "-bail", "-cmd", ".timeout 5000", str(site.var / "latchkey.sqlite3"), *args]
    if web_user_kwargs():
        cmd = ["runuser", "-u", WEB_USER, "--", *cmd]
    return cmd


def site_sql(site: Site, statement: str) -> list[dict]:
    """Rows of one SQL statement (sqlite3 -json)."""
    result = subprocess.run(sqlite_cmd(site, "-json", statement), capture_output=True, timeout=30)
    assert result.returncode == 0, f"sqlite3 failed on {statement!r}: {result.stderr.decode(errors='replace')}"
    out = result.stdout.decode("utf-8", errors="replace").strip()
    return json.loads(out) if out else []


def site_dump(site: Site, *tables: str) -> bytes:
    """The database's logical content (`.dump`, or `.dump TABLE…` for only those tables)."""
    result = subprocess.run(sqlite_cmd(site, f".dump {' '.join(tables)}".strip()), capture_output=True, timeout=30)
    assert result.returncode == 0, f"sqlite3 .dump failed: {result.stderr.decode(errors='replace')}"
    return result.stdout


def integrity_check(site: Site) -> str:
    """`PRAGMA integrity_check` as text ('ok' when the file is sound)."""
    result = subprocess.run(sqlite_cmd(site, "PRAGMA integrity_check;"), capture_output=True, timeout=60)
    return (result.stdout + result.stderr).decode("utf-8", errors="replace").strip()


# --- waiting for a site's CGIs and after-response workers ---------------------------------------------
def _listening_sockets() -> set[str]:
    """`socket:[INODE]` of every listening unix and TCP socket: a FastCGI worker's descriptor 0."""
    found = set()
    try:
        with open("/proc/net/unix") as f:
            for line in list(f)[1:]:
                fields = line.split()
                if len(fields) >= 7 and int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON: listening
                    found.add(f"socket:[{fields[6]}]")
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in list(f)[1:]:
                    fields = line.split()
                    if len(fields) >= 10 and fields[3] == "0A":  # LISTEN
                        found.add(f"socket:[{fields[9]}]")
    except OSError:
        pass
    return found


def site_processes(site: Site) -> list[int]:
    """Live processes whose environment names this site's config: its CGIs and their workers.
    Persistent FastCGI workers (descriptor 0 a listening socket) wait for requests, not work:
    they are not counted."""
    want = os.path.realpath(site.config).encode()
    busy = []
    listening = _listening_sockets()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/fd/0") in listening:
                continue
        except OSError:
            pass
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except (OSError, IndexError):
            continue
        for var in environ.split(b"\0"):
            if var.startswith(b"LATCHKEY_CONFIG="):
                value = var.split(b"=", 1)[1]
                if value == want or os.path.realpath(value) == want:
                    busy.append(int(entry.name))
    return busy


def admin_ok(site: Site, *args, input=None, env=None):
    """`latchkey ARGS` on `site` as the admin, which must succeed; var/ then goes back to the web user."""
    result = site.latchkey(*args, input=input, env=env)
    site.chown_var()
    assert result.returncode == 0, f"latchkey {' '.join(map(str, args))}: {result.stdout}{result.stderr}"
    return result


def add_customer(site: Site, address: str, password: str | None, offer: str = "gold") -> None:
    """A customer with access to `offer` (created when missing) and, unless None, `password`."""
    if not site_sql(site, f"SELECT 1 FROM offer WHERE slug = '{offer}'"):
        admin_ok(site, "offer", "add", offer, "--name", offer.title())
    admin_ok(site, "user", "add", address, "--no-email", "--offer", offer)
    if password:
        admin_ok(site, "user", "set-password", address, input=password + "\n")


def poll(fetch, done=bool, timeout: float = 5.0, interval: float = 0.05, what: str = "condition"):
    """Calls fetch() until done(value); returns the value. Fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.1f}s; last value: {value!r}")
        time.sleep(interval)


def wait_site_idle(site: Site, timeout: float = 10.0) -> None:
    """Waits until no CGI or after-response worker of `site` runs; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        busy = site_processes(site)
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"CGI/worker processes {busy} of {site.config} still running after {timeout:.0f}s")
        time.sleep(0.02)


def verifies(stored_hash: str, password: str) -> bool:
    """True when `password` matches an Argon2id hash from the database (checked with argon2-cffi,
    independently of the product's own libsodium code)."""
    import argon2
    try:
        return argon2.PasswordHasher().verify(stored_hash, password)
    except argon2.exceptions.VerifyMismatchError:
        return False
