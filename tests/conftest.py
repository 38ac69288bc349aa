"""Shared pytest fixtures. Keep each one small; feature-specific helpers live in their own modules."""

from __future__ import annotations

import pytest
from sshd import Sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH sshd on a free loopback port, for the whole session (see tests/sshd.py).

    Gives `.host`, `.port`, `.user`, `.client_key`, `.known_hosts` (pins the host key) and `.root`
    (the served directory: relative SFTP paths land there). Tests that stop, freeze or re-key a
    server start their own `Sshd.start(tmp_path)` instead of disturbing this one.
    """
    server = Sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
