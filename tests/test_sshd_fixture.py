"""The sshd test fixture itself: a real server that serves its root and pins its host key."""

from __future__ import annotations

import io

import paramiko


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
