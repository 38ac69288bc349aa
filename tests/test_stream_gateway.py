"""A route as a stream, through a real `gisgate watch`: held intervals, corrections (sent or only
counted), the window, the per-file opt-out, and what `status` and the metrics say about it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from gateway_harness import HEADER, drop, files, input_states

from tests.conftest import SAMPLES, run_cli

CONFIG = """
[watch]
converters = 0
reports = false

[[route]]
name = "q"
targets = ["ds"]
{route}

[target.ds]
kind = "folder"
path = "dataserver"
"""


def gateway(tmp_path, route: str = "") -> tuple:
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG.format(route=route))
    return root, root / "inbox" / "q"


def once(root, *more: str):
    r = run_cli("watch", "--root", root, "--once", "--settle", "0.05", "--drain", "10", *more)
    assert r.returncode in (0, 3), r.stderr
    return r


def rows(start: datetime, offered: list[int], service: int = 100) -> bytes:
    lines = [f"{(start + timedelta(minutes=15 * i)).isoformat()},{service},{n},{n},{n},0,{60 * n},0,0,{5 * n},100\n"
             for i, n in enumerate(offered)]
    return (HEADER + "".join(lines)).encode()


def status(root) -> dict:
    r = run_cli("status", "--root", root, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def offered_in(path) -> str:
    return path.read_text().splitlines()[2].split(",")[2]


DAY = datetime(2024, 11, 4, 8, 0, tzinfo=UTC)


def test_queues_in_two_files_make_one_service_file_per_interval(tmp_path):
    root, inbox = gateway(tmp_path)
    drop(inbox, "q100.csv", rows(DAY, [3, 4], service=100))
    once(root)
    drop(inbox, "q200.csv", rows(DAY, [7, 8], service=200))
    once(root)
    (first, second) = files(root / "dataserver")
    assert [line.split(",")[0] for line in first.read_text().splitlines()[2:]] == ["100", "200"]
    assert status(root)["streams"]["q"]["corrections"] == 2  # the two intervals went again, whole


def test_a_late_correction_replaces_the_row_and_is_sent_again(tmp_path):
    root, inbox = gateway(tmp_path)
    drop(inbox, "a.csv", rows(DAY, [3, 4]))
    once(root)
    drop(inbox, "b.csv", rows(DAY + timedelta(minutes=15), [9]))
    once(root)
    assert [offered_in(p) for p in files(root / "dataserver")] == ["3", "9"]
    st = status(root)["streams"]["q"]
    assert st["corrections"] == 1 and st["held"] == 0 and st["horizon"].startswith("2024-11-04T08:15")


def test_without_corrections_a_changed_interval_is_counted_not_sent(tmp_path):
    root, inbox = gateway(tmp_path, "corrections = false")
    drop(inbox, "a.csv", rows(DAY, [3, 4]))
    once(root)
    drop(inbox, "b.csv", rows(DAY + timedelta(minutes=15), [9]))
    r = once(root)
    assert [offered_in(p) for p in files(root / "dataserver")] == ["3", "4"]
    assert status(root)["streams"]["q"]["corrections"] == 1
    assert "NOT sent again (corrections = false)" in r.stderr


def test_live_intervals_are_held_until_their_end_plus_hold(tmp_path):
    root, inbox = gateway(tmp_path, "hold_minutes = 60")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15) - timedelta(minutes=15)  # one ended, this one, the next
    drop(inbox, "live.csv", rows(start, [1, 2, 3]))
    once(root)
    st = status(root)["streams"]["q"]
    assert files(root / "dataserver") == [] and st["held"] == 3 and st["next_due"] > datetime.now(UTC).timestamp()
    assert "interval(s) held" in run_cli("status", "--root", root).stdout
    (root / "gisgate.toml").write_text(CONFIG.format(route="hold_minutes = 0"))
    once(root)
    sent = len(files(root / "dataserver"))  # the intervals that have ended by now (the current one may have)
    assert sent in (1, 2) and status(root)["streams"]["q"]["held"] == 3 - sent  # the next one is held


def test_an_input_before_the_window_is_rejected_with_what_to_do(tmp_path):
    root, inbox = gateway(tmp_path, "stream_days = 1")
    drop(inbox, "today.csv", rows(DAY, [1]))
    once(root)
    drop(inbox, "old.csv", rows(DAY - timedelta(days=3), [1]))
    once(root)
    assert input_states(root) == {"archived": 1, "rejected": 1}
    (reason,) = (root / "rejected" / "q").glob("*/old.csv.error.txt")
    text = reason.read_text()
    assert "before this route's stream window" in text and "gisgate convert" in text and "gisgate deliver" in text


def test_stream_false_converts_each_file_on_its_own(tmp_path):
    root, inbox = gateway(tmp_path, "stream = false")
    drop(inbox, "q100.csv", rows(DAY, [3], service=100))
    once(root)
    drop(inbox, "q200.csv", rows(DAY, [7], service=200))
    once(root)
    (only,) = files(root / "dataserver")
    assert [line.split(",")[0] for line in only.read_text().splitlines()[2:]] == ["200"]  # the last file wins
    assert status(root)["streams"] == {}


def test_metrics_count_held_intervals_and_corrections(tmp_path):
    root, inbox = gateway(tmp_path)
    drop(inbox, "a.csv", rows(DAY, [3]))
    once(root)
    drop(inbox, "b.csv", rows(DAY, [4]))
    metrics = tmp_path / "metrics.prom"
    once(root, "--metrics", str(metrics))
    text = metrics.read_text()
    assert 'gisgate_stream_corrections_total{route="q"} 1' in text
    assert 'gisgate_stream_intervals_held{route="q"} 0' in text


def test_real_time_states_of_a_stream_go_once_each(tmp_path):
    """LiveVox agent event pages that overlap: every state change is sent as a real-time state once,
    and together they are the one-shot conversion's states."""
    case = SAMPLES / "livevox-rtstate"
    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text((case / "gisgate.toml").read_text() + CONFIG.format(
        route='format = "livevox"\noutputs = ["gis", "rtstate"]').replace('targets = ["ds"]', 'targets = ["ds"]'))
    first = json.loads((case / "input" / "agent_events_1.json").read_text())
    second = json.loads((case / "input" / "agent_events_2.json").read_text())
    overlap = {**second, "agentEvent": first["agentEvent"][-5:] + second["agentEvent"]}  # re-sends 5 events
    inbox = root / "inbox" / "q"
    drop(inbox, "page-1.json", json.dumps(first).encode())
    once(root)
    drop(inbox, "page-2.json", json.dumps(overlap).encode())
    once(root)
    sent = [e for p in files(root / "dataserver") if p.name.startswith("rtstate-")
            for e in json.loads(p.read_text())]
    reference = tmp_path / "ref"
    r = run_cli("convert", case / "input" / "agent_events_1.json", case / "input" / "agent_events_2.json",
                "--from", "livevox", "--to", "rtstate", "--config", root / "gisgate.toml", "--out", reference)
    assert r.returncode == 0, r.stderr
    expected = [e for p in reference.iterdir() for e in json.loads(p.read_text())]
    key = json.dumps
    assert sorted(map(key, sent)) == sorted(map(key, expected)) and len(sent) == len(expected)
    assert len([p for p in files(root / "dataserver") if p.name.startswith("rtstate-")]) == 2
