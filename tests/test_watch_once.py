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
    assert sorted(p.name for p in (tmp_path / "archive" / "generic").glob("*/*.csv")) == ["agent.csv", "service.csv"]
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


def test_each_archived_input_gets_a_report_and_status_links_the_latest(tmp_path):
    (tmp_path / "inbox").mkdir()
    shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    (archived,) = (tmp_path / "archive" / "generic").glob("*/service.csv")
    page = archived.with_name("service.csv.report.html")
    html = page.read_text()
    assert "<svg" in html and "9912306" in html and "Missing intervals" in html
    assert not list((tmp_path / "dataserver").glob("*.html")), "reports are never delivered"
    status = run_cli("status", "--root", tmp_path)
    assert f"latest report: {page.as_uri()}" in status.stdout


def test_a_large_backlog_listing_is_logged(tmp_path):
    (tmp_path / "inbox").mkdir()
    for n in range(30):
        shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox" / f"s{n:02d}.csv")
    (tmp_path / "gisgate.toml").write_text("""
[watch]
queue_limit = 10
reports = false

[acd]
timezone = "America/New_York"

[[route]]
name = "generic"
inbox = "inbox"
targets = ["dataserver"]

[target.dataserver]
kind = "folder"
path = "dataserver"
""")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2")
    assert r.returncode == 0, r.stderr
    assert "30 candidate file(s), 10 taken into the queue (limit 10)" in r.stderr
    archived = list((tmp_path / "archive" / "generic").glob("*/*.csv"))
    assert len(archived) == 30  # the first copy converted, the other 29 archived as duplicates


def test_once_exits_3_when_an_input_was_rejected_after_delivering_the_rest(tmp_path):
    (tmp_path / "inbox").mkdir()
    shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox")
    (tmp_path / "inbox" / "broken.csv").write_text("periodStart,acdServiceId\nnot a time,1\n")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 3, r.stderr
    assert "1 input(s) rejected in this run (the rest was delivered)" in r.stderr
    assert "generic/broken.csv: rejected/generic/" in r.stderr and "broken.csv.error.txt" in r.stderr
    assert len(list((tmp_path / "dataserver").glob("*.SERVICE"))) == 100
    # The next run rejects nothing: it says 0 again (the rejected file waits for a fix in rejected/).
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr


def test_once_exits_0_while_a_stream_holds_live_intervals(tmp_path):
    from datetime import UTC, datetime, timedelta

    from gateway_harness import HEADER

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15)  # the current interval: held until its end + 20 min
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "live.csv").write_text(HEADER + f"{start.isoformat()},100,3,3,3,0,180,0,0,15,100\n")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2")
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "dataserver").glob("*"))
    status = run_cli("status", "--root", tmp_path)
    assert "1 interval(s) held" in status.stdout, status.stdout


def test_the_gateway_logs_what_a_conversion_warns_about(tmp_path):
    """The New York sample without a zone: its offsets disagree with UTC's; the log says so."""
    (tmp_path / "inbox").mkdir()
    shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox")
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2")
    assert r.returncode == 0, r.stderr
    assert "generic/service.csv: periodStart: 100 of 100 timestamps carry UTC offsets" in r.stderr
