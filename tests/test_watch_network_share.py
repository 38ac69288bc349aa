"""An inbox on a real network share: an sshfs (FUSE) mount of a loopback OpenSSH server. Files
written on the server's side raise no inotify event on the mount; the gateway notices the fuse
mount, polls it, and takes the files across file systems by copy."""

from __future__ import annotations

import subprocess

import pytest
import system
from gateway_harness import Gate, csv_file, files, input_states, service_name, wait_until
from sshd import Sshd


@pytest.mark.needs("sshd", "sshfs")
def test_files_written_on_the_server_side_of_an_sshfs_inbox_are_taken(tmp_path):
    share = tmp_path / "share"  # the server's side of the share
    share.mkdir()
    server = Sshd.start(tmp_path / "sshd", root=share)
    mount = tmp_path / "mnt"
    mount.mkdir()
    root = tmp_path / "gw"
    root.mkdir()
    sshfs = [system.PARTS["sshfs"].find(), "-p", str(server.port), "-o", f"IdentityFile={server.client_key}",
             "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", f"{server.user}@{server.host}:{share}", str(mount)]
    mounted = subprocess.run(sshfs, capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        server.stop()
        error = " ".join(mounted.stderr.split()) or f"exit {mounted.returncode}"
        if system.fuse_refused(error):  # e.g. a container without CAP_SYS_ADMIN
            system.unavailable(f"needs FUSE mounts, which this machine refuses: sshfs: {error}")
        raise AssertionError(f"sshfs could not mount the share: {error}\n{server.log_text()}")
    try:
        (root / "gisgate.toml").write_text(
            f'[[route]]\nname = "share"\ninbox = "{mount}"\ntargets = ["ds"]\n'
            '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
        gate = Gate(root, rescan=30.0)  # events or the poller must find it well before a rescan
        try:
            wait_until(lambda: "polling" in gate.text(), what="polling chosen for the fuse mount")
            (share / "server-side.csv.part").write_bytes(csv_file(9))
            (share / "server-side.csv.part").rename(share / "server-side.csv")
            wait_until(lambda: input_states(root) == {"archived": 1}, timeout=20, what="taken from the share")
            wait_until(lambda: [p.name for p in files(root / "dataserver")] == [service_name(9)], what="delivered")
            assert [p.name for p in files(share)] == []  # removed from the share after the copy
        finally:
            assert gate.stop() == 0
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], check=False, timeout=30)
        server.stop()
