"""The sshd test fixture itself: a real server that serves its root and pins its host key."""

from __future__ import annotations

import io

import paramiko
import pytest
from sshd import Sshd


def test_sshd_fixture_serves_its_root_with_a_pinned_host_key(sshd):
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(sshd.host, sshd.port, sshd.user, key_filename=str(sshd.client_key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        sftp = client.open_sftp()
        sftp.putfo(io.BytesIO(b"hello"), "fixture-check.txt")
    finally:
        client.close()
    assert (sshd.root / "fixture-check.txt").read_bytes() == b"hello"
    assert "Accepted publickey" in sshd.log_text()


@pytest.mark.needs("sshd")
def test_sshd_can_serve_a_given_directory_and_be_stopped_and_restarted(tmp_path):
    inbox = tmp_path / "inbox"
    with Sshd.start(tmp_path / "sshd", root=inbox) as server:
        port = server.port
        server.stop_all()
        server.run()  # same port, same keys
        assert server.port == port
        client = paramiko.SSHClient()
        client.load_host_keys(str(server.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(server.host, server.port, server.user, key_filename=str(server.client_key),
                       look_for_keys=False, allow_agent=False, timeout=10)
        try:
            client.open_sftp().putfo(io.BytesIO(b"dropped"), "drop.csv")
        finally:
            client.close()
    assert (inbox / "drop.csv").read_bytes() == b"dropped"
    assert server.proc is None
