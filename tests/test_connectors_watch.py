"""Sources inside a real `gisgate watch`: what they fetch converts exactly as the same data dropped by hand,
through the ordinary path (stream, archive, delivery), and a `kill -9` in the middle of a fetch loses and
doubles nothing."""

from __future__ import annotations

import json
import time

from fake_platforms import FakeLinkLive, load_linklive, seconds, shifted
from gateway_harness import Gate, drop, files, query, wait_until

from tests.conftest import run_cli

KEY = "llapi_TESTKEY0123456789abcdef"
CONFIG = """
[acd]
timezone = "America/New_York"
interval_minutes = 15

[mapping]
services = {{ "q-billing" = "101", "q-support" = "102", "billing" = "101", "support" = "102" }}
home_queue = {{ "1001" = "101", "1002" = "102" }}
default_service = "101"

[mapping.agents]  # LinkLive user ids, then Talkdesk ones
"u-5f2a11" = "1001"
"u-5f2a12" = "1002"
"u-5f2a13" = "1003"
"u-5f2a14" = "1004"
"5f2a11" = "1001"
"5f2a12" = "1002"
"5f2a13" = "1003"
"5f2a14" = "1004"
AG1 = "1001"
AG2 = "1002"
AG3 = "1003"
AG4 = "1004"

[watch]
converters = 0
reports = false

[[route]]
name = "linklive"
format = "linklive"
targets = ["ds"]
hold_minutes = 0

[[route]]
name = "talkdesk"
format = "talkdesk"
targets = ["ds"]
hold_minutes = 0

[[route]]
name = "livevox"
format = "livevox"
targets = ["ds"]
hold_minutes = 0

[target.ds]
kind = "folder"
path = "dataserver"
{source}
"""
SOURCE = """
[[source]]
name = "ll"
kind = "linklive"
route = "linklive"
base_url = "{url}"
api_key_env = "GISGATE_TEST_LL_KEY"
every = "1s"
overlap = "15m"
start = "1d"
max_window = "2h"
timeout_s = 2
backoff_seconds = 0.2
"""


TALKDESK = """
[[source]]
name = "td"
kind = "talkdesk"
route = "talkdesk"
base_url = "{url}"
token_url = "{url}/oauth/token"
client_id = "gisgate-client"
client_secret_env = "GISGATE_TEST_TD_SECRET"
every = "1s"
overlap = "15m"
start = "1d"
max_window = "3h"
poll_seconds = 0.05
timeout_s = 2
backoff_seconds = 0.2
"""
SECRET = "td-SECRET-0123456789"


def recent_day() -> dict[str, list[dict]]:
    """The recorded sample day moved (by whole 15 minutes) so that it ends about two hours ago."""
    records = load_linklive()
    last = max(seconds(r["startTimestamp"]) for r in records["userStates"])
    return shifted(records, int((time.time() - 7200 - last) // 900 * 900))


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in files(folder)}


def by_hand(tmp_path, records, route: str = "linklive") -> dict[str, bytes]:
    """The same records dropped as exports into a gateway without sources: what it delivers."""
    root = tmp_path / "by-hand"
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG.format(source=""))
    for what, rows in records.items():
        body = {"organizationId": "org_123", what: rows} if route == "linklive" else \
            {"type": what, "version": "v1", "total": len(rows), "entries": rows} if route == "talkdesk" else \
            {"agentEvent" if what == "agentEvent" else "events": rows}
        drop(root / "inbox" / route, f"{what}.json", json.dumps(body).encode())
    r = run_cli("watch", "--root", root, "--once", "--settle", "0.05", "--drain", "20")
    assert r.returncode == 0, r.stderr
    return contents(root / "dataserver")


def gateway(tmp_path, server) -> tuple:
    root = tmp_path / "fetching"
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG.format(source=SOURCE.format(url=server.base_url)))
    return root, {"GISGATE_TEST_LL_KEY": KEY}


def caught_up(root) -> bool:
    rows = query(root, "SELECT what, cursor FROM source_cursors WHERE source='ll'")
    return len(rows) == 2 and all(c and time.time() - c < 30 for _, c in rows)


def test_a_linklive_source_in_watch_delivers_what_the_same_data_dropped_by_hand_gives(tmp_path):
    records = recent_day()
    expected = by_hand(tmp_path, records)
    assert len(expected) > 20
    server = FakeLinkLive(key=KEY, records=records).start()
    server.inject("/userStates", status=429, retry_after=0.5)
    server.inject("/queueEngagementIntervals", status=503, times=2)
    root, extra = gateway(tmp_path, server)
    metrics = tmp_path / "metrics.prom"
    gate = Gate(root, "--metrics", str(metrics), extra_env=extra)
    try:
        wait_until(lambda: caught_up(root), 60, what="the source to catch up")
        wait_until(lambda: contents(root / "dataserver") == expected, 60, what="the fetched day delivered")
        wait_until(lambda: "gisgate_source_lag_seconds" in (metrics.read_text() if metrics.exists() else ""), 10)
    finally:
        gate.stop()
        server.stop()
    landed = query(root, "SELECT name FROM inputs WHERE route='linklive'")
    assert landed and all(n.startswith(("ll-userStates-", "ll-queueEngagementIntervals-")) for n, in landed)
    assert len(server.asked("/userStates")) >= 13  # 24 h in 2 h windows, the 429 asked again
    assert KEY not in gate.text() and "llapi_" not in gate.text()
    text = metrics.read_text()
    assert 'gisgate_source_files_total{source="ll"}' in text and 'gisgate_source_errors_total{source="ll"} 0' in text
    status = json.loads(run_cli("status", "--root", root, "--json").stdout)["sources"]["ll"]
    assert status["last_error"] is None and status["lag"] < 60 and status["files"] >= 26


def test_a_talkdesk_source_in_watch_delivers_what_the_same_reports_dropped_by_hand_give(tmp_path):
    from fake_talkdesk import FakeTalkdesk, load_talkdesk
    from fake_talkdesk import shifted as moved

    records = load_talkdesk()
    delta = int((time.time() - 7200 - 1730620800) // 900 * 900)  # the sample day's 08:00 UTC, two hours ago
    records = moved(records, delta)
    expected = by_hand(tmp_path, records, "talkdesk")
    assert len(expected) > 20
    server = FakeTalkdesk(secret=SECRET, records=records).start()
    server.fail_jobs = 1
    server.inject("/data/reports/user_status/jobs", status=429, retry_after=0.3)
    root = tmp_path / "fetching"
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG.format(source=TALKDESK.format(url=server.url)))
    gate = Gate(root, extra_env={"GISGATE_TEST_TD_SECRET": SECRET})
    try:
        wait_until(lambda: contents(root / "dataserver") == expected, 90, what="the fetched reports delivered")
    finally:
        gate.stop()
        server.stop()
    assert SECRET not in gate.text() and not any(t in gate.text() for t in server.issued)
    names = [n for n, in query(root, "SELECT name FROM inputs")]
    assert names and all(n.startswith(("td-contacts-", "td-user_status-")) for n in names)


LIVEVOX = """
[[source]]
name = "lv"
kind = "livevox"
route = "livevox"
base_url = "{url}"
client_name = "acme"
username = "gisgate-svc"
password_env = "GISGATE_TEST_LV_PASSWORD"
access_token_env = "GISGATE_TEST_LV_TOKEN"
count = 100
timeout_s = 5
backoff_seconds = 0.2
"""


def test_a_livevox_source_in_watch_delivers_what_the_same_feed_pages_dropped_by_hand_give(tmp_path):
    from fake_livevox import FakeLiveVox, load_livevox
    from fake_livevox import shifted as moved

    events = load_livevox()
    last = max(int(e["timestamp"]) for e in events["agentEvent"]) / 1000
    events = moved(events, int((time.time() - 7200 - last) // 900 * 900))
    expected = by_hand(tmp_path, events, "livevox")
    assert len(expected) > 20
    server = FakeLiveVox(access="LVACCESS-0123456789", password="lv-PASSWORD-42", events=events).start()
    server.inject("/agentEvent/feed", status=503, retry_after=0.2)
    root = tmp_path / "fetching"
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG.format(source=LIVEVOX.format(url=server.url)))
    gate = Gate(root, extra_env={"GISGATE_TEST_LV_PASSWORD": "lv-PASSWORD-42",
                                 "GISGATE_TEST_LV_TOKEN": "LVACCESS-0123456789"})
    try:
        wait_until(lambda: contents(root / "dataserver") == expected, 90, what="the fed events delivered")
    finally:
        gate.stop()
        server.stop()
    text = gate.text()
    assert "lv-PASSWORD-42" not in text and "LVACCESS" not in text and not any(t in text for t in server.issued)
    assert len(query(root, "SELECT name FROM inputs")) == 4 + 3  # pages of 100 events


def test_watch_once_polls_every_source_up_to_now_then_drains(tmp_path, monkeypatch):
    records = recent_day()
    expected = by_hand(tmp_path, records)
    server = FakeLinkLive(key=KEY, records=records).start()
    try:
        root, _ = gateway(tmp_path, server)
        monkeypatch.setenv("GISGATE_TEST_LL_KEY", KEY)
        r = run_cli("watch", "--root", root, "--once", "--settle", "0.05", "--drain", "20")
        assert r.returncode == 0, r.stderr
        assert contents(root / "dataserver") == expected and caught_up(root)
    finally:
        server.stop()
