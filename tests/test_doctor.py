"""`gisgate doctor` against the real servers: a loopback OpenSSH sshd and the local WFM HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PASSWORD_ENV = "GISGATE_TEST_DOCTOR_PASSWORD"


def doctor(root, *args, env=None):
    return subprocess.run([sys.executable, "-m", "gisgate", "doctor", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def write_config(root, sshd, fake_wfm, known_hosts, sftp_path="."):
    (root / "gisgate.toml").write_text(f"""
[acd]
timezone = "America/New_York"

[[route]]
name = "generic"
targets = ["ds", "ds-sftp", "wfo"]

[target.ds]
kind = "folder"
path = "dataserver"

[target.ds-sftp]
kind = "sftp"
host = "{sshd.host}"
port = {sshd.port}
user = "{sshd.user}"
path = "{sftp_path}"
known_hosts = "{known_hosts}"
key_file = "{sshd.client_key}"
timeout_s = 5

[target.wfo]
kind = "webex"
base_url = "{fake_wfm.url}"
username = "{fake_wfm.user}"
password_env = "{PASSWORD_ENV}"
timeout_s = 5
""")


def test_everything_reachable(tmp_path, sshd, fake_wfm):
    write_config(tmp_path, sshd, fake_wfm, sshd.known_hosts)
    r = doctor(tmp_path, env={PASSWORD_ENV: fake_wfm.password})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(lines)
    assert any("ds-sftp" in line and "host key pinned, logged in" in line for line in lines)
    assert any("wfo" in line and "logged in as" in line for line in lines)
    assert fake_wfm.password not in r.stdout + r.stderr


def test_unknown_host_key_wrong_password_and_missing_folder_fail(tmp_path, sshd, fake_wfm):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    write_config(tmp_path, sshd, fake_wfm, empty, sftp_path="no/such/folder")
    r = doctor(tmp_path, "--json", env={PASSWORD_ENV: "wrong-password"})
    assert r.returncode == 4
    checks = {c["what"]: c for c in json.loads(r.stdout)}
    assert checks["target ds"]["ok"] and checks["config"]["ok"]
    assert not checks["target ds-sftp"]["ok"] and "not pinned" in checks["target ds-sftp"]["detail"]
    assert "SHA256:" in checks["target ds-sftp"]["detail"]
    assert not checks["target wfo"]["ok"] and "refused the login" in checks["target wfo"]["detail"]
    assert "wrong-password" not in r.stdout + r.stderr
    # With the host key pinned, the sftp check reaches the folder check.
    write_config(tmp_path, sshd, fake_wfm, sshd.known_hosts, sftp_path="no/such/folder")
    r = doctor(tmp_path, "--target", "ds-sftp")
    assert r.returncode == 4 and "no/such/folder" in r.stdout


def test_bad_config_is_exit_2(tmp_path):
    (tmp_path / "gisgate.toml").write_text("[acd]\ntimezone = 'Nowhere/Land'\n")
    r = doctor(tmp_path)
    assert r.returncode == 2
    assert "FAIL" in r.stdout and "acd.timezone" in r.stdout
