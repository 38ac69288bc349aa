"""`gisgate watch --once`: drain the inboxes, deliver, exit (the README's main job)."""

from __future__ import annotations

import shutil

from tests.conftest import SAMPLES, run_cli

NY = SAMPLES / "generic-ny-fallback"


def test_once_converts_delivers_and_exits_with_the_golden_files(tmp_path):
    (tmp_path / "inbox").mkdir()
    for f in (NY / "input").iterdir():
        shutil.copy(f, tmp_path / "inbox" / f.name)
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    delivered = {p.name: p.read_bytes() for p in (tmp_path / "dataserver").iterdir()}
    expected = {p.name: p.read_bytes() for p in (NY / "expected").iterdir()}
    assert delivered == expected
    assert sorted(p.name for p in (tmp_path / "archive" / "generic").glob("*/*")) == ["agent.csv", "service.csv"]
    assert not list((tmp_path / "inbox").iterdir())
    # Running again finds nothing to do and delivers nothing twice.
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "dataserver").iterdir())) == len(expected)


def test_once_exits_4_when_outputs_cannot_be_delivered(tmp_path):
    (tmp_path / "inbox").mkdir()
    shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox")
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "gisgate.toml").write_text(f"""
[acd]
timezone = "America/New_York"

[[route]]
name = "generic"
inbox = "inbox"
targets = ["dataserver"]

[target.dataserver]
kind = "sftp"
host = "127.0.0.1"
port = 9
user = "gis"
path = "gis"
known_hosts = "{tmp_path / 'known_hosts'}"
password_file = "{tmp_path / 'pw'}"
timeout_s = 1
""")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--drain", "2")
    assert r.returncode == 4, r.stderr
    assert "100 output(s) are still waiting in the outbox" in r.stderr
    assert len(list((tmp_path / "outbox" / "dataserver").glob("*/*.SERVICE"))) == 100
