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

    def stop(self) -> None:
        pid = self._pid()
        if self.conf.exists():
            subprocess.run(["apache2", "-f", str(self.conf), "-k", "stop"],
                           capture_output=True, text=True, timeout=30)
        if pid:
            deadline = time.monotonic() + self.STOP_TIMEOUT
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
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
