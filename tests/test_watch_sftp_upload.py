"""A partner uploads into the gateway's inbox over SFTP through a real OpenSSH sshd on loopback:
written in place in slow chunks, and under a temp name renamed at the end with an old mtime kept
(what `put -p` does). Each file is taken once, complete."""

from __future__ import annotations

import time

import paramiko
from gateway_harness import Gate, csv_file, files, finished, input_states, query, service_name, wait_until


def partner(sshd) -> paramiko.SFTPClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(sshd.host, sshd.port, username=sshd.user, key_filename=str(sshd.client_key),
                   allow_agent=False, look_for_keys=False, timeout=10)
    sftp = client.open_sftp()
    sftp.get_channel().settimeout(10)
    sftp._client = client  # keep the transport alive with the SFTP session
    return sftp


def test_sftp_uploads_in_place_and_by_rename_are_taken_once_complete(tmp_path, sshd):
    root = tmp_path / "gw"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    gate = Gate(root, settle=1.5)
    sftp = partner(sshd)
    try:
        # 1. in place, 8 chunks with pauses shorter than the settle time
        data = csv_file(0, 16)
        with sftp.open(str(inbox / "inplace.csv"), "wb") as f:
            step = len(data) // 8 + 1
            for i in range(0, len(data), step):
                f.write(data[i:i + step])
                f.flush()
                time.sleep(0.4)
        # 2. temp name, old mtime preserved, then posix-rename into place
        moved = csv_file(20, 4)
        with sftp.open(str(inbox / "renamed.csv.part"), "wb") as f:
            f.write(moved)
        old = time.time() - 3 * 86400
        sftp.utime(str(inbox / "renamed.csv.part"), (old, old))
        time.sleep(2.0)  # longer than settle: the .part must still be left alone
        assert (inbox / "renamed.csv.part").exists()
        sftp.posix_rename(str(inbox / "renamed.csv.part"), str(inbox / "renamed.csv"))

        wait_until(lambda: finished(root) == 2, what="both uploads")
        assert input_states(root) == {"archived": 2}
        archived = {p.name: p.read_bytes() for p in files(root / "archive")}
        assert archived == {"inplace.csv": data, "renamed.csv": moved}
        expected = sorted([service_name(i) for i in range(16)] + [service_name(i) for i in range(20, 24)])
        wait_until(lambda: [p.name for p in files(root / "dataserver")] == expected, what="outputs delivered")
        [(seen, claimed)] = query(root, "SELECT first_seen, claimed_at FROM inputs WHERE name='renamed.csv'")
        assert claimed - seen >= 1.5, "the preserved old mtime must not shorten the settle time"
    finally:
        sftp.close()
        sftp._client.close()
        assert gate.stop() == 0
