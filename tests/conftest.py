"""Shared fixtures. Helpers that start real servers live in their own modules next to this one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import system
from sshd import Sshd

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `gisgate` command line in a child process (exit codes and streams as a user sees them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gisgate", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


# -- system parts: OpenSSH, sshfs + FUSE, Chromium (tests/system.py) -------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs(*parts): system parts the test uses (tests/system.py: sshd, sshfs, chromium, ...); "
        "installed with apt when run as root, else the test skips (fails with GISGATE_TEST_STRICT=1)")
    if not hasattr(config, "workerinput"):  # the controlling process: one id for the whole session
        os.environ.setdefault(system.SESSION_ENV, uuid.uuid4().hex)
        config._gisgate_session_owner = True


def pytest_unconfigure(config):
    if getattr(config, "_gisgate_session_owner", False):
        system.end_session()


@pytest.fixture(autouse=True)
def _system_parts(request):
    """Applies `@pytest.mark.needs(...)` (a fixture, so that a skip names the test, not this file)."""
    for marker in request.node.iter_markers("needs"):
        system.require(*marker.args)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH sshd on a free loopback port, for the whole session (see tests/sshd.py).

    Gives `.host`, `.port`, `.user`, `.client_key`, `.known_hosts` (pins the host key) and `.root`
    (the served directory: relative SFTP paths land there). Tests that stop, freeze or re-key a
    server start their own `Sshd.start(tmp_path)` instead of disturbing this one.
    """
    system.require("sshd")
    server = Sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop_all()


# -- REST targets: a real local Webex WFO / CommunityWFM server (tests/fake_wfm.py) -----------------


@pytest.fixture
def wfm_clock():
    from fake_wfm import FakeClock

    return FakeClock()


@pytest.fixture
def fake_wfm(wfm_clock):
    """A plain-HTTP fake WFO + Cloud Connect server on a free loopback port; its clock is `wfm_clock`."""
    from fake_wfm import FakeWfm

    server = FakeWfm(clock=wfm_clock).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wfm_tls_files(tmp_path_factory):
    from fake_wfm import make_tls

    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_wfm_tls(wfm_clock, wfm_tls_files):
    """The same server over HTTPS with a certificate from a throwaway CA (`wfm_tls_files["ca"]`)."""
    from fake_wfm import FakeWfm

    server = FakeWfm(clock=wfm_clock, tls=(wfm_tls_files["cert"], wfm_tls_files["key"])).start()
    yield server
    server.stop()
