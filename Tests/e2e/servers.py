"""nginx + fcgiwrap and lighttpd serving a Latchkey site on loopback, for the end-to-end tests.

Both classes have ApacheServer's interface (start / stop / cleanup / url / get / post / request /
error_log / access_log, usable with `with`) and reuse its HTTP code by subclassing it. Each runs
from the complete config that `latchkey webserver nginx|lighttpd --standalone` prints, with its
pid file, logs and sockets in a private 0755 runtime folder under /tmp, bound to 127.0.0.1.

- `NginxServer`: starts fcgiwrap as www-data on the socket the config names (its first line,
  `# fcgiwrap socket: PATH`), then `nginx -c CONF` (which daemonizes). Stop: `nginx -s stop`,
  wait for the master to go, then end the fcgiwrap this object started (its own process group).
- `LighttpdServer`: `lighttpd -f CONF` (daemonizes; pid in RUNTIME/lighttpd.pid). Stop: SIGTERM
  to that pid, SIGKILL if it outlives the deadline.

`make_server(kind, site)` builds an unstarted server of kind "apache", "nginx" or "lighttpd";
`running(kind, config, offer)` starts one for a fresh site with that offer (`members` by default),
and removes both after.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from lkserver import CGI_DIR, WEB_USER, ApacheServer, Site, free_port, run_latchkey

SERVER_KINDS = ("apache", "nginx", "lighttpd")


def _web_user():
    """(uid, gid) of the web server's user, or None when it does not exist."""
    try:
        entry = pwd.getpwnam(WEB_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


class _DaemonServer(ApacheServer):
    """What nginx and lighttpd share: config from `latchkey webserver KIND --standalone`,
    wait for the port, stop by pid."""

    KIND = ""
    CONF_NAME = ""
    PID_NAME = ""

    def __init__(self, site: Site, cgi_dir: Path | str = CGI_DIR, port: int | None = None,
                 runtime_dir: Path | None = None):
        super().__init__(site, cgi_dir=cgi_dir, port=port, runtime_dir=runtime_dir)
        self.conf = self.runtime_dir / self.CONF_NAME
        self.pid_file = self.runtime_dir / self.PID_NAME
        self.config_text = ""

    # --- steps the subclasses fill in -------------------------------------------------------
    def _launch(self) -> None:
        raise NotImplementedError

    def _request_stop(self, pid: int | None) -> None:
        raise NotImplementedError

    # --- lifecycle ------------------------------------------------------------------------
    def _generate_config(self) -> str:
        result = run_latchkey("webserver", self.KIND, "--standalone",
                              "--listen", f"{self.host}:{self.port}",
                              "--runtime-dir", self.runtime_dir,
                              "--cgi-dir", self.cgi_dir,
                              *self._webserver_args(),
                              config=self.site.config)
        if result.returncode != 0:
            raise AssertionError(f"latchkey webserver {self.KIND} failed ({result.returncode}): "
                                 f"{result.stdout}{result.stderr}")
        return result.stdout

    def start(self):
        self.site.update_config(base_url=self.url)
        self.site.build(check=True)
        self.site.chown_var()
        self.config_text = self._generate_config()
        self.conf.write_text(self.config_text, encoding="utf-8")
        # The workers (www-data) write logs here (lighttpd opens its error log after dropping
        # privileges) and fcgiwrap creates its socket here.
        ids = _web_user() if os.geteuid() == 0 else None
        if ids:
            os.chown(self.runtime_dir, *ids)
        self.runtime_dir.chmod(0o755)
        self.started = True
        try:
            self._before_launch(self.config_text)
            self._launch()
            self._wait_for_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.KIND} did not answer on {self.url} within "
                                         f"{self.START_TIMEOUT:.0f}s\nerror.log:\n{self.error_log()}")
                time.sleep(0.05)

    def _wait_for_pid_file(self, timeout: float = 5.0) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._pid()
            if pid:
                return pid
            time.sleep(0.02)
        return None


class NginxServer(_DaemonServer):
    """nginx + fcgiwrap on 127.0.0.1:PORT serving `site`."""

    KIND = "nginx"
    CONF_NAME = "nginx.conf"
    PID_NAME = "nginx.pid"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fcgiwrap: subprocess.Popen | None = None
        self.fcgiwrap_socket: Path | None = None
        self.fcgiwrap_log = self.runtime_dir / "fcgiwrap.log"
        self.fcgiwrap_children = 1  # fcgiwrap's default; the benchmark runs more

    def _launch(self) -> None:
        first = self.config_text.splitlines()[0] if self.config_text else ""
        prefix = "# fcgiwrap socket:"
        if not first.startswith(prefix):
            raise AssertionError(f"the nginx config's first line should name the fcgiwrap socket, got {first!r}")
        self.fcgiwrap_socket = Path(first[len(prefix):].strip())
        self._start_fcgiwrap()
        result = subprocess.run(["nginx", "-c", str(self.conf)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"nginx -c {self.conf} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}\nerror.log:\n{self.error_log()}")
        self._wait_for_pid_file()

    def _start_fcgiwrap(self) -> None:
        sock = self.fcgiwrap_socket
        sock.parent.mkdir(parents=True, exist_ok=True)
        if sock.exists():
            sock.unlink()
        ids = _web_user() if os.geteuid() == 0 else None
        if ids and sock.parent != self.runtime_dir:  # www-data must be able to create the socket
            os.chown(sock.parent, *ids)
            sock.parent.chmod(0o755)
        log = open(self.fcgiwrap_log, "ab")
        try:
            kwargs = {}
            if ids:
                kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
            self.fcgiwrap = subprocess.Popen(
                ["fcgiwrap", "-c", str(self.fcgiwrap_children), "-s", f"unix:{sock}"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/", start_new_session=True, **kwargs)
        finally:
            log.close()
        deadline = time.monotonic() + self.START_TIMEOUT
        while not sock.exists():
            if self.fcgiwrap.poll() is not None:
                raise AssertionError(f"fcgiwrap exited ({self.fcgiwrap.returncode}):\n{self._fcgiwrap_output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"fcgiwrap made no socket at {sock} within {self.START_TIMEOUT:.0f}s")
            time.sleep(0.02)

    def _fcgiwrap_output(self) -> str:
        try:
            return self.fcgiwrap_log.read_text(errors="replace")
        except OSError:
            return ""

    def _request_stop(self, pid: int | None) -> None:
        if self.conf.exists() and pid:
            subprocess.run(["nginx", "-c", str(self.conf), "-s", "stop"], capture_output=True, text=True, timeout=30)

    def _after_stop(self) -> None:
        proc, self.fcgiwrap = self.fcgiwrap, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: fcgiwrap and its CGI children
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=self.STOP_TIMEOUT)
        if self.fcgiwrap_socket is not None and self.fcgiwrap_socket.exists():
            try:
                self.fcgiwrap_socket.unlink()
            except OSError:
                pass

    def error_log(self) -> str:
        return super().error_log() + (f"\n--- fcgiwrap ---\n{out}" if (out := self._fcgiwrap_output()) else "")


class LighttpdServer(_DaemonServer):
    """lighttpd (mod_cgi) on 127.0.0.1:PORT serving `site`."""

    KIND = "lighttpd"
    CONF_NAME = "lighttpd.conf"
    PID_NAME = "lighttpd.pid"

    def _launch(self) -> None:
        result = subprocess.run(["lighttpd", "-f", str(self.conf)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"lighttpd -f {self.conf} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}\nerror.log:\n{self.error_log()}")
        self._wait_for_pid_file()

    def _request_stop(self, pid: int | None) -> None:
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class _Serve:
    """FastCGI mode with `latchkey serve`: the config's first line is the command that starts the
    workers (`# start first: …`); it is run as printed, before the server, and stopped after it
    (SIGTERM: each worker finishes its request)."""

    FASTCGI = True
    serve: subprocess.Popen | None = None

    def _webserver_args(self) -> list:
        return ["--fastcgi", *self._serve_listen()]

    def _serve_listen(self) -> list:
        return []

    def _before_launch(self, config_text: str) -> None:
        first = config_text.splitlines()[0] if config_text else ""
        prefix = "# start first: "
        if not first.startswith(prefix):
            raise AssertionError(f"a --fastcgi config's first line should be the serve command, got {first!r}")
        command = shlex.split(first[len(prefix):])
        self.serve_log = self.runtime_dir / "serve.log"
        with open(self.serve_log, "ab") as log:
            self.serve = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        listen = command[command.index("--listen") + 1]
        deadline = time.monotonic() + self.START_TIMEOUT
        while not _accepts(listen):
            if self.serve.poll() is not None:
                raise AssertionError(f"latchkey serve exited ({self.serve.returncode}):\n{self.serve_output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"latchkey serve did not listen on {listen}:\n{self.serve_output()}")
            time.sleep(0.02)
        self.serve_listen = listen

    def serve_output(self) -> str:
        try:
            return self.serve_log.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def _after_stop(self) -> None:
        super()._after_stop()
        proc, self.serve = self.serve, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.STOP_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=self.STOP_TIMEOUT)

    def error_log(self) -> str:
        return super().error_log() + (f"\n--- latchkey serve ---\n{out}" if (out := self.serve_output()) else "")


def _accepts(listen: str) -> bool:
    """True when something accepts connections on `unix:PATH` or `HOST:PORT`."""
    try:
        if listen.startswith("unix:"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(0.5)
                sock.connect(listen[5:])
        else:
            host, port = listen.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


class ApacheFastCGIServer(_Serve, ApacheServer):
    """Apache with mod_proxy_fcgi and mod_authnz_fcgi to `latchkey serve` on a loopback port."""

    def _serve_listen(self) -> list:
        self.fastcgi_port = free_port()
        return ["--fastcgi-listen", f"127.0.0.1:{self.fastcgi_port}"]


class ApacheFcgidServer(ApacheServer):
    """Apache starting the workers itself (mod_fcgid); members behind its access checker."""

    FASTCGI = True

    def _webserver_args(self) -> list:
        return ["--fastcgi"]


class NginxFastCGIServer(_Serve, NginxServer):
    """nginx `fastcgi_pass` to `latchkey serve` on a unix socket; members through auth_request."""

    def _launch(self) -> None:
        result = subprocess.run(["nginx", "-c", str(self.conf)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"nginx -c {self.conf} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}\nerror.log:\n{self.error_log()}")
        self._wait_for_pid_file()


class LighttpdFastCGIServer(LighttpdServer):
    """lighttpd starting the workers itself (mod_fastcgi `bin-path`), members via its authorizer.
    Run in the foreground (`-D`, its own session) with its standard error in a file: the workers
    inherit it, and that is where their log lines go (under systemd, the journal)."""

    FASTCGI = True
    proc: subprocess.Popen | None = None

    def _webserver_args(self) -> list:
        return ["--fastcgi"]

    def _launch(self) -> None:
        self.stderr_log = self.runtime_dir / "lighttpd.stderr"
        with open(self.stderr_log, "ab") as log:
            self.proc = subprocess.Popen(["lighttpd", "-D", "-f", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        if not self._wait_for_pid_file():
            raise AssertionError(f"lighttpd -D -f {self.conf} wrote no pid file:\n{self.error_log()}")

    def _after_stop(self) -> None:
        super()._after_stop()
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=self.STOP_TIMEOUT)

    def error_log(self) -> str:
        try:
            workers = self.stderr_log.read_text(errors="replace")
        except (OSError, AttributeError):
            workers = ""
        return super().error_log() + (f"\n--- lighttpd's standard error (the workers') ---\n{workers}" if workers else "")


SERVER_CLASSES = {"apache": ApacheServer, "nginx": NginxServer, "lighttpd": LighttpdServer,
                  "apache-fastcgi": ApacheFastCGIServer, "apache-fcgid": ApacheFcgidServer,
                  "nginx-fastcgi": NginxFastCGIServer, "lighttpd-fastcgi": LighttpdFastCGIServer}
# FastCGI under each server: Apache both ways (latchkey serve behind mod_proxy_fcgi, and
# mod_fcgid starting the workers), nginx with latchkey serve, lighttpd with bin-path.
FASTCGI_KINDS = ("apache-fastcgi", "apache-fcgid", "nginx-fastcgi", "lighttpd-fastcgi")


def make_server(kind: str, site: Site, cgi_dir: Path | str = CGI_DIR) -> ApacheServer:
    """An unstarted server of `kind` ("apache", "nginx", "lighttpd") for `site`."""
    return SERVER_CLASSES[kind](site, cgi_dir=cgi_dir)


@contextlib.contextmanager
def running(kind: str, config: dict, offer: str = "members"):
    """A started server of `kind` for a fresh site with `config` and `offer`; stopped and removed
    when the block ends."""
    site = Site.create(config, build=False)
    server = make_server(kind, site)
    server.kind = kind
    try:
        server.start()
        result = site.latchkey("offer", "add", offer, "--name", offer.title())
        site.chown_var()
        assert result.returncode == 0, result.stderr
        yield server
    finally:
        server.cleanup()
        site.remove()
