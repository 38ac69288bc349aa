"""kill -9 at every step boundary, then restart: each file ends in archive exactly once, its outputs
are staged once and delivered once, and the ledger is whole."""

from __future__ import annotations

import random
import signal
import time

import pytest
from gateway_harness import Gate, csv_file, drop, files, finished, input_states, query, service_name, wait_until

POINTS = ["after-claim", "after-stage", "after-commit", "after-archive", "before-sending-commit", "after-sending",
          "after-deliver", "after-sent-commit", "after-stream-take"]


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_then_restart_loses_and_duplicates_nothing(tmp_path, point):
    root = tmp_path / "gw"
    inbox = root / "inbox"
    for i in range(4):
        drop(inbox, f"in{i}.csv", csv_file(2 * i, 2))  # 4 inputs, 8 distinct SERVICE outputs
    drop(inbox, "bad.csv", b"")  # and one reject, which passes the claim and archive points too
    expected = sorted(service_name(i) for i in range(8))

    # Crash at the 2nd time the point is reached, so some work is already done and some is not.
    gate = Gate(root, settle=0.2, crash=f"{point}:2")
    assert gate.wait_exit(timeout=30) == -signal.SIGKILL, gate.text()
    unfinished = 5 - finished(root) + query(root, "SELECT COUNT(*) FROM deliveries WHERE state<>'sent'")[0][0]
    assert unfinished > 0, "the kill left nothing to recover"

    gate = Gate(root, settle=0.2, log="restart")
    try:
        wait_until(lambda: finished(root) == 5, what="every input finished after restart")
        wait_until(lambda: [p.name for p in files(root / "dataserver")] == expected, what="every output delivered")
        wait_until(lambda: query(root, "SELECT COUNT(*) FROM deliveries WHERE state NOT IN ('sent')") == [(0,)],
                   what="ledger settles")
    finally:
        assert gate.stop() == 0
    assert input_states(root) == {"archived": 4, "rejected": 1}
    assert sorted(p.name for p in files(root / "archive")) == [f"in{i}.csv" for i in range(4)]
    assert sorted(p.name for p in files(root / "rejected")) == ["bad.csv", "bad.csv.error.txt"]
    assert files(root / "work") == [] and files(inbox) == []
    for state in ("pending", "sending", "failed"):
        assert files(root / "outbox" / "dataserver" / state) == []
    # staged once, delivered once: one output row and one sent delivery per file name
    assert query(root, "SELECT name, COUNT(*) FROM outputs GROUP BY name HAVING COUNT(*) > 1") == []
    assert query(root, "SELECT name, COUNT(*) FROM deliveries WHERE state='sent' GROUP BY name "
                       "HAVING COUNT(*) > 1") == []
    assert len(query(root, "SELECT id FROM deliveries WHERE state='sent'")) == 8
    assert [p.name for p in files(root / "outbox" / "dataserver" / "sent")] == expected
    assert list((root / "dataserver").glob(".~gisgate-*")) == []
    assert query(root, "PRAGMA integrity_check") == [("ok",)]


def test_kill_9_at_random_moments_in_a_loop(tmp_path):
    root = tmp_path / "gw"
    inbox = root / "inbox"
    for i in range(40):
        drop(inbox, f"r{i:02}.csv", csv_file(i))
    rng = random.Random(7)
    for round_ in range(6):
        gate = Gate(root, settle=0.1, log=f"round{round_}")
        time.sleep(0.8 + rng.random() * 0.8)
        gate.kill()
        assert query(root, "PRAGMA integrity_check") in ([], [("ok",)])
    gate = Gate(root, settle=0.1, log="final")
    try:
        wait_until(lambda: finished(root) == 40, timeout=60, what="all 40 inputs")
        wait_until(lambda: len(files(root / "dataserver")) == 40, what="all 40 outputs")
        wait_until(lambda: query(root, "SELECT COUNT(*) FROM deliveries WHERE state<>'sent'") == [(0,)],
                   what="ledger settles")
    finally:
        assert gate.stop() == 0
    assert input_states(root) == {"archived": 40}
    assert len(files(root / "archive")) == 40 and files(root / "work") == []
    assert query(root, "SELECT name FROM deliveries WHERE state='sent' GROUP BY name HAVING COUNT(*) > 1") == []
    assert len(files(root / "outbox" / "dataserver" / "sent")) == 40


def test_a_converter_whose_gateway_died_while_it_started_exits(tmp_path):
    """kill -9 can land between starting a converter process and it asking to die with its
    parent; it must then end on its own instead of waiting forever for work."""
    import subprocess
    import sys

    code = ("import os; from gisgate.gateway.converters import die_with_parent; "
            "die_with_parent(os.getppid() + 1_000_000); print('still running')")  # not our parent
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "still running" not in r.stdout
    r = subprocess.run([sys.executable, "-c", code.replace(" + 1_000_000", "")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "still running" in r.stdout
