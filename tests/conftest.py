"""Shared fixtures. Helpers that start real servers live in their own modules next to this one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sshd import Sshd

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `gisgate` command line in a child process (exit codes and streams as a user sees them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gisgate", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


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
    server = Sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop_all()
