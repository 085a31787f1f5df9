"""The command line around the workers: `latchkey webserver systemd`, the refusals of
`latchkey serve`, and a systemd-style start with the socket on descriptor 3 (LISTEN_FDS,
LISTEN_PID).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time

import pytest

import fcgiclient as fc
from lkserver import Site, WEB_USER, poll, run_latchkey, served_tempdir
from fastcgi_support import Serve, answer, fcgi_env, location_path, web_owned_tempdir, worker_pids

# --- the command line and systemd ---------------------------------------------------------------
def test_webserver_systemd_prints_socket_and_service_units(default_site):
    """`latchkey webserver systemd` prints a socket unit (the socket, owned by www-data) and a
    service unit that runs `latchkey serve` for this site and reloads with SIGHUP."""
    result = default_site.latchkey("webserver", "systemd")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    socket_unit, _, service_unit = text.partition("[Service]")
    assert "[Socket]" in socket_unit
    assert re.search(r"^ListenStream=/\S+\.sock$", socket_unit, re.M), socket_unit
    assert re.search(r"^SocketUser=www-data$", socket_unit, re.M)
    exec_start = re.search(r"^ExecStart=(\S+) serve\b(.*)$", service_unit, re.M)
    assert exec_start, service_unit
    assert os.access(exec_start.group(1), os.X_OK), exec_start.group(1)
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", service_unit, re.M), service_unit
    assert f"LATCHKEY_CONFIG={default_site.config}" in service_unit

    custom = default_site.latchkey("webserver", "systemd", "--listen", "unix:/run/lk-test/other.sock", "--user", "nobody")
    assert custom.returncode == 0, custom.stderr
    assert re.search(r"^ListenStream=/run/lk-test/other\.sock$", custom.stdout, re.M)
    assert re.search(r"^SocketUser=nobody$", custom.stdout, re.M)


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root")
def test_serve_as_root_without_user_is_refused(default_site):
    """As root without --user, `latchkey serve` refuses at once with one line, exit 1, and
    binds nothing."""
    folder = served_tempdir("latchkey-noroot-")
    try:
        started = time.monotonic()
        result = run_latchkey("serve", "--listen", f"unix:{folder}/s.sock", config=default_site.config, timeout=20)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "--user" in lines[0], result.stderr
        assert result.stdout == ""
        assert time.monotonic() - started < 10
        assert not (folder / "s.sock").exists()
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.mark.parametrize("listen", ["garbage", "127.0.0.1:notaport", "127.0.0.1:0", "127.0.0.1:99999",
                                    "999.0.0.1:9000", "localhost", "unix:FILE", "unix:/no/such/folder/s.sock"])
def test_serve_with_a_bad_listen_fails_cleanly(default_site, listen):
    """`--listen` that is no address (or a regular file, or a folder that does not exist):
    one line naming the problem, exit 1, and the file is untouched."""
    folder = served_tempdir("latchkey-badlisten-")
    try:
        plain = folder / "plain.txt"
        plain.write_text("not a socket\n")
        value = listen.replace("FILE", str(plain))
        result = run_latchkey("serve", "--listen", value, "--user", WEB_USER, config=default_site.config, timeout=20)
        assert result.returncode == 1, (value, result.returncode, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Fatal error" not in result.stderr and result.stdout == ""
        assert plain.read_text() == "not a socket\n"
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_systemd_style_start_with_the_socket_on_descriptor_3(latchkey_path):
    """As systemd starts it: a listening unix socket made by the caller on descriptor 3,
    LISTEN_FDS=1 and LISTEN_PID=<serve's pid>, no --listen. Requests on that socket are
    answered, and SIGTERM ends it with 0 (the socket is the caller's, so it stays)."""
    site = Site.create({}, build=False)
    runtime = web_owned_tempdir("latchkey-systemd-")
    path = runtime / "latchkey.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    serve = None
    try:
        listener.bind(str(path))
        listener.listen(64)
        serve = Serve(site, None, "--workers", "2", pass_socket=listener)
        address = f"unix:{path}"
        serve.wait_listening(address)
        assert "the socket systemd passed" in poll(serve.log, lambda text: "latchkey serve:" in text)
        poll(lambda: len(worker_pids(serve.proc.pid)) == 2, timeout=10, what="2 workers")
        for _ in range(3):
            status, headers, _ = answer(address, fc.request_bytes(fcgi_env(site, "reset", query="token=bogus")))
            assert status == 303 and location_path(headers) == "/expired.html", (status, headers)
        assert answer(address, fc.request_bytes(fcgi_env(site, "session")))[0] == 401
        assert serve.stop() == 0, serve.log()
        assert path.exists(), "the supervisor removed a socket it did not make"
    finally:
        listener.close()
        if serve is not None:
            serve.cleanup()
        subprocess.run(["rm", "-rf", str(runtime)], check=False)
        site.remove()
