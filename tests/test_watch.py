"""`gisgate watch` as a real process on real folders: pickup, lifecycle, duplicates, volume, shutdown."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
from gateway_harness import (
    Gate,
    csv_file,
    drop,
    files,
    finished,
    input_states,
    query,
    service_name,
    wait_until,
)


def run_status(root) -> str:
    from click.testing import CliRunner

    from gisgate.cli import cli

    result = CliRunner().invoke(cli, ["status", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return result.output


def test_slow_writer_is_taken_once_complete(tmp_path):
    root = tmp_path / "gw"
    gate = Gate(root, settle=1.5)
    try:
        inbox = root / "inbox"
        wait_until(lambda: inbox.is_dir(), what="inbox")
        data = csv_file(0, 10)
        lines = data.splitlines(keepends=True)
        with open(inbox / "slow.csv", "wb") as f:  # in place, 10 chunks over 5 s
            for i in range(10):
                f.write(b"".join(lines[i * len(lines) // 10:(i + 1) * len(lines) // 10]) if i < 9
                        else b"".join(lines[9 * len(lines) // 10:]))
                f.flush()
                time.sleep(0.5)
        wait_until(lambda: finished(root) == 1, what="the slow file")
        assert input_states(root) == {"archived": 1}
        assert (root / "archive" / "generic").exists()
        [archived] = files(root / "archive")
        assert archived.read_bytes() == data
        wait_until(lambda: len(files(root / "dataserver")) == 10, what="10 SERVICE files")
        assert [p.name for p in files(root / "dataserver")] == sorted(service_name(i) for i in range(10))
    finally:
        assert gate.stop() == 0


def test_temp_name_is_ignored_until_renamed(tmp_path):
    root = tmp_path / "gw"
    gate = Gate(root, settle=0.3)
    try:
        inbox = root / "inbox"
        wait_until(lambda: inbox.is_dir(), what="inbox")
        for temp in ("x.csv.part", "x.csv.tmp", ".x.csv", "~$x.csv"):
            (inbox / temp).write_bytes(csv_file(0))
        time.sleep(1.5)  # five times the settle time
        assert finished(root) == 0
        os.replace(inbox / "x.csv.part", inbox / "x.csv")
        wait_until(lambda: finished(root) == 1, what="x.csv")
        assert [p.name for p in files(root / "archive")] == ["x.csv"]
        left = sorted(p.name for p in inbox.iterdir() if p.name != ".gisgate-canary")
        assert left == [".x.csv", "x.csv.tmp", "~$x.csv"]
    finally:
        assert gate.stop() == 0


def test_done_file_mode_and_old_mtime(tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(
        '[[route]]\nname = "partner"\ndone_file = true\ntargets = ["out"]\n'
        '[target.out]\nkind = "folder"\npath = "dataserver"\n'
    )
    inbox = root / "inbox" / "partner"
    inbox.mkdir(parents=True)
    gate = Gate(root, settle=0.3)
    try:
        drop(inbox, "a.csv", csv_file(0))
        two_days_ago = time.time() - 2 * 86400
        os.utime(inbox / "a.csv", (two_days_ago, two_days_ago))  # like `cp -p` or an SFTP client keeping times
        time.sleep(1.5)
        assert finished(root) == 0, "taken without its done-file"
        (inbox / "a.csv.done").write_bytes(b"")
        wait_until(lambda: finished(root) == 1, what="a.csv after its done-file")
        assert [p.name for p in files(root / "archive")] == ["a.csv", "a.csv.done"]
        [(first_seen, claimed)] = query(root, "SELECT first_seen, claimed_at FROM inputs")
        assert claimed - first_seen >= 0.3, "the old mtime must not count as settled time"
        wait_until(lambda: files(root / "dataserver"), what="delivery")
    finally:
        assert gate.stop() == 0


def test_empty_and_truncated_files_are_rejected_with_a_reason(tmp_path):
    root = tmp_path / "gw"
    gate = Gate(root)
    try:
        inbox = root / "inbox"
        drop(inbox, "empty.csv", b"")
        drop(inbox, "cut.json", b'[{"periodStart": "2026-11-02T08:00:00-05:00", "acdServiceId": "100", "contactsOff')
        drop(inbox, "good.csv", csv_file(3))
        wait_until(lambda: finished(root) == 3, what="three files")
        assert input_states(root) == {"archived": 1, "rejected": 2}
        rejected = {p.name: p for p in files(root / "rejected")}
        assert set(rejected) == {"empty.csv", "empty.csv.error.txt", "cut.json", "cut.json.error.txt"}
        empty = rejected["empty.csv.error.txt"].read_text()
        assert "empty.csv" in empty and "empty" in empty.split("reason):")[1] and "What to do:" in empty
        cut = rejected["cut.json.error.txt"].read_text()
        assert "cut.json" in cut and "What to do:" in cut and str(root / "work") not in cut
        assert rejected["cut.json"].read_bytes().endswith(b"contactsOff")  # kept as dropped
        wait_until(lambda: [p.name for p in files(root / "dataserver")] == [service_name(3)], what="good output")
    finally:
        assert gate.stop() == 0


def test_same_content_twice_is_a_duplicate_and_new_content_a_new_version(tmp_path):
    root = tmp_path / "gw"
    gate = Gate(root)
    try:
        inbox = root / "inbox"
        drop(inbox, "day.csv", csv_file(0, 2))
        wait_until(lambda: finished(root) == 1, what="first file")
        drop(inbox, "day-copy.csv", csv_file(0, 2))  # same bytes, another name
        wait_until(lambda: finished(root) == 2, what="the copy")
        drop(inbox, "day.csv", csv_file(0, 2))  # same bytes, same name
        wait_until(lambda: finished(root) == 3, what="the re-drop")
        assert input_states(root) == {"archived": 1, "duplicate": 2}
        wait_until(lambda: len(files(root / "dataserver")) == 2, what="outputs")
        before = (root / "dataserver" / service_name(0)).read_bytes()
        drop(inbox, "day.csv", csv_file(0, 2, offered=40))  # corrected export under the same name
        wait_until(lambda: finished(root) == 4, what="the new version")
        assert input_states(root) == {"archived": 2, "duplicate": 2}
        wait_until(lambda: (root / "dataserver" / service_name(0)).read_bytes() != before, what="new version")
        assert b"40" in (root / "dataserver" / service_name(0)).read_bytes()
        names = [p.name for p in files(root / "archive")]
        assert sorted(names) == ["day-copy.csv", "day.csv", "day~2.csv", "day~3.csv"]
        sent = "SELECT name, COUNT(*) FROM deliveries WHERE state='sent' GROUP BY name"
        # once per distinct content
        wait_until(lambda: dict(query(root, sent)) == {service_name(0): 2, service_name(1): 2}, what="deliveries")
    finally:
        assert gate.stop() == 0


def test_file_dropped_while_down_is_taken_at_start(tmp_path):
    root = tmp_path / "gw"
    drop(root / "inbox", "early.csv", csv_file(5))
    gate = Gate(root)
    try:
        wait_until(lambda: (root / "dataserver" / service_name(5)).exists(), what="early.csv delivered")
        assert input_states(root) == {"archived": 1}
    finally:
        assert gate.stop() == 0


def test_sigterm_finishes_in_flight_work_and_exits_0(tmp_path):
    root = tmp_path / "gw"
    inbox = root / "inbox"
    for i in range(60):
        drop(inbox, f"f{i:03}.csv", csv_file(i))
    gate = Gate(root, settle=0.2)
    wait_until(lambda: finished(root) >= 5, what="some progress")
    assert gate.stop(timeout=20) == 0
    assert files(root / "work") == []
    done = finished(root)
    assert query(root, "SELECT COUNT(*) FROM deliveries WHERE state<>'sent'") == [(0,)]
    assert len(files(root / "dataserver")) == done  # what was taken was delivered before exit
    gate = Gate(root, settle=0.2, log="watch2")
    try:
        wait_until(lambda: finished(root) == 60, what="the rest after restart")
        wait_until(lambda: len(files(root / "dataserver")) == 60, what="all outputs")
        assert len(files(root / "archive")) == 60
        assert [p.name for p in files(inbox)] == []
    finally:
        assert gate.stop() == 0


def test_2000_files_at_once_memory_bounded(tmp_path):
    root = tmp_path / "gw"
    (root / "inbox").mkdir(parents=True)
    gate = Gate(root, settle=0.3, rescan=2.0)
    try:
        wait_until(lambda: (root / "gisgate.db").exists(), what="gateway up")
        time.sleep(1.0)
        proc = psutil.Process(gate.pid)
        base = proc.memory_info().rss
        stage = root / "staging"
        stage.mkdir()
        for i in range(2000):  # a day of 96 intervals, 21 queues: the route's stream window holds them all
            (stage / f"bulk{i:04}.csv").write_bytes(csv_file(i % 96, service=100 + i // 96))
        for p in stage.iterdir():
            os.replace(p, root / "inbox" / p.name)
        peak = base
        deadline = time.monotonic() + 120
        while finished(root) < 2000 and time.monotonic() < deadline:
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.2)
        assert finished(root) == 2000
        assert input_states(root) == {"archived": 2000}
        wait_until(lambda: len(files(root / "dataserver")) == 96, timeout=60, what="96 interval files")
        assert (peak - base) / 2**20 < 120, f"RSS grew by {(peak - base) / 2**20:.0f} MiB"
    finally:
        assert gate.stop() == 0


def test_a_file_that_keeps_growing_is_reported_stuck_not_taken(tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(
        '[[route]]\nname = "p"\nstuck_seconds = 1.0\ntargets = ["ds"]\n'
        '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    prom = tmp_path / "m.prom"
    gate = Gate(root, "--metrics", str(prom), settle=0.6)
    try:
        inbox = root / "inbox" / "p"
        wait_until(lambda: inbox.is_dir(), what="inbox")
        data = csv_file(0, 30)
        with open(inbox / "growing.csv", "wb") as f:
            deadline = time.monotonic() + 30

            def reported():
                return ("still being written" in gate.text()
                        and "gisgate_files_stuck 1" in (prom.read_text() if prom.exists() else ""))
            while not reported() and time.monotonic() < deadline:
                f.write(data[f.tell():f.tell() + 20])  # a little every 0.2 s, never stable for 0.6 s
                f.flush()
                time.sleep(0.2)
            assert reported() and finished(root) == 0
            f.write(data[f.tell():])
        wait_until(lambda: finished(root) == 1, what="taken once complete")
        assert [p.read_bytes() for p in files(root / "archive")] == [data]
    finally:
        assert gate.stop() == 0


def test_data_server_verdicts_archives_and_penalty_box(tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(
        '[outbox]\noutcome_seconds = 0.2\n[[route]]\nname = "p"\ntargets = ["ds"]\n'
        '[target.ds]\nkind = "folder"\npath = "gis/acme"\narchives = "../archives*"\n'
        'penalty_box = "../penaltyBox/*"\n')
    gate = Gate(root)
    try:
        drop(root / "inbox" / "p", "two.csv", csv_file(0, 2))
        gis = root / "gis"
        wait_until(lambda: len(files(gis / "acme")) == 2, what="delivery")
        # the Data Server imports one file and refuses the other
        (gis / "archives20261126").mkdir()
        (gis / "penaltyBox" / "20261126").mkdir(parents=True)
        os.replace(gis / "acme" / service_name(0), gis / "archives20261126" / service_name(0))
        os.replace(gis / "acme" / service_name(1), gis / "penaltyBox" / "20261126" / service_name(1))
        outcome = "SELECT name, outcome FROM deliveries ORDER BY name"
        wait_until(lambda: query(root, outcome) == [(service_name(0), "accepted"), (service_name(1), "penalty")],
                   what="verdicts in the ledger")
        wait_until(lambda: "refused" in gate.text() and "penalty box" in gate.text(), what="the alert")
    finally:
        assert gate.stop() == 0
    report = json.loads(run_status(root))
    assert [p["name"] for p in report["penalty_box"]] == [service_name(1)]


def test_inbox_on_another_file_system_polled_and_copied(tmp_path):
    import shutil
    import uuid

    shm = Path("/dev/shm") / f"gisgate-test-{uuid.uuid4().hex}"  # tmpfs: not the root's file system
    inbox = shm / "inbox"
    inbox.mkdir(parents=True)
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(
        f'[[route]]\nname = "share"\ninbox = "{inbox}"\ntargets = ["ds"]\n'
        '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    gate = Gate(root, "--polling")
    try:
        drop(inbox, "remote.csv", csv_file(7))
        wait_until(lambda: input_states(root) == {"archived": 1}, what="taken across file systems")
        wait_until(lambda: [p.name for p in files(root / "dataserver")] == [service_name(7)], what="delivered")
        assert [p.name for p in files(inbox)] == [] and files(root / "work") == []
        assert "polling" in gate.text()
    finally:
        assert gate.stop() == 0
        shutil.rmtree(shm, ignore_errors=True)


def test_idle_gateway_does_not_spin_and_ctrl_c_stops_it(tmp_path):
    import signal

    root = tmp_path / "gw"
    gate = Gate(root, settle=0.3, rescan=1.0)
    try:
        # the watching line comes once the converter processes are warm (their start-up is not idling)
        wait_until(lambda: "watching" in gate.text(), timeout=60, what="gateway up and warm")
        time.sleep(2.0)
        proc = psutil.Process(gate.pid)
        family = [proc, *proc.children(recursive=True)]
        before = sum(sum(p.cpu_times()[:2]) for p in family)
        time.sleep(4.0)
        used = sum(sum(p.cpu_times()[:2]) for p in family) - before
        assert used / 4.0 < 0.05, f"idle gateway used {used / 4.0:.1%} of a CPU"
        drop(root / "inbox", "a.csv", csv_file(0))
        wait_until(lambda: finished(root) == 1, what="a.csv")
    finally:
        gate.proc.send_signal(signal.SIGINT)
        assert gate.wait_exit(30) == 0
    assert "received SIGINT" in gate.text()


def test_queue_limit_bounds_what_is_tracked_and_oldest_go_first(tmp_path):
    root = tmp_path / "gw"
    inbox = root / "inbox" / "p"
    inbox.mkdir(parents=True)
    (root / "gisgate.toml").write_text(
        '[watch]\nqueue_limit = 10\n[[route]]\nname = "p"\ntargets = ["ds"]\n'
        '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    for i in range(60):
        p = inbox / f"q{i:02}.csv"
        p.write_bytes(csv_file(i))
        os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i))  # q00 is the oldest
    prom = tmp_path / "m.prom"
    gate = Gate(root, "--metrics", str(prom), settle=0.3)
    tracked = []
    try:
        while finished(root) < 60:
            text = prom.read_text() if prom.exists() else ""
            tracked += [float(line.split()[1]) for line in text.splitlines()
                        if line.startswith("gisgate_files_tracked ")]
            time.sleep(0.05)
            assert gate.proc.poll() is None
    finally:
        assert gate.stop() == 0
    assert tracked and max(tracked) <= 10
    order = [name for (name,) in query(root, "SELECT name FROM inputs ORDER BY id")]
    assert order == [f"q{i:02}.csv" for i in range(60)]
