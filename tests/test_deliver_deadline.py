"""`gisgate deliver --deadline S` bounds the whole command, the closing of the session included: a
server that accepts connections and never answers cannot stretch it to timeout_s past the deadline."""

from __future__ import annotations

import socket
import time

import pytest
from test_deliver_cli import WFO_ENV, gis, passwords, write_config  # noqa: F401 (passwords: autouse fixture)

from gisgate import config
from gisgate.commands.deliver import deliver_files
from gisgate.errors import TransientDeliveryError


@pytest.fixture
def silent_server():
    """A listening socket that never accepts: the kernel completes each connection, nobody answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def silent_config(tmp_path, url):
    path = tmp_path / "silent.toml"
    path.write_text(f'[target.wfo]\nkind = "webex"\nbase_url = "{url}"\nusername = "u@example.com"\n'
                    f'password_env = "{WFO_ENV}"\nacd_server_id = 1\n')  # timeout_s: the default 30 s
    return path


def test_a_server_that_never_answers_costs_the_deadline_not_the_timeouts(tmp_path, cli, silent_server):
    started = time.monotonic()
    r = cli("deliver", *gis(tmp_path), "--target", "wfo", "--config", silent_config(tmp_path, silent_server),
            "--deadline", "3")
    took = time.monotonic() - started
    assert r.returncode == 4, r.stderr
    assert "timed out" in r.stderr or "deadline was reached" in r.stderr
    assert took < 12, f"{took:.1f} s for a 3 s deadline (timeout_s is 30 s)"  # process start-up included


def test_the_deadline_holds_in_process_too(tmp_path, silent_server):
    cfg = config.load(silent_config(tmp_path, silent_server))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError):
        deliver_files(gis(tmp_path), cfg, "wfo", deadline_s=2.0)
    assert time.monotonic() - started < 2.5


def test_closing_the_session_is_inside_the_deadline(tmp_path, fake_wfm):
    """Login works, then uploads and the logout hang: the logout gets what is left, not timeout_s."""
    fake_wfm.inject("/polling", delay=6, times=100)
    fake_wfm.inject("/api/rest/authorize", delay=6, after=1)  # the first match (the login) passes
    cfg = config.load(write_config(tmp_path, fake_wfm))  # timeout_s = 5
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match="timed out"):
        deliver_files(gis(tmp_path), cfg, "wfo", deadline_s=3.0)
    assert time.monotonic() - started < 3.5
    assert fake_wfm.logins == 1 and ("DELETE", "/api/rest/authorize") in fake_wfm.requests


def test_an_sftp_server_that_never_answers_costs_the_deadline(tmp_path, cli, silent_server):
    port = silent_server.rsplit(":", 1)[1]
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "pw").write_text("secret\n")
    cfg = tmp_path / "sftp.toml"
    cfg.write_text(f'[target.ds]\nkind = "sftp"\nhost = "127.0.0.1"\nport = {port}\nuser = "gis"\npath = "gis"\n'
                   f'known_hosts = "{tmp_path / "known_hosts"}"\npassword_file = "{tmp_path / "pw"}"\n')
    started = time.monotonic()
    r = cli("deliver", *gis(tmp_path), "--target", "ds", "--config", cfg, "--deadline", "3")
    took = time.monotonic() - started
    assert r.returncode == 4, r.stderr
    assert took < 12, f"{took:.1f} s for a 3 s deadline (timeout_s is 30 s, deadline_s 300 s)"
