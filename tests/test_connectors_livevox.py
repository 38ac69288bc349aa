"""The LiveVox source against a real local LiveVox: a session (LV-Session + LV-Access) opened again when
dropped, the two event feeds as long polls with tokens (≤ 1000 events a call, the token kept in the
ledger), and a token too old: a new feed, and a gap that status and metrics show."""

from __future__ import annotations

import json
import re
import threading

import pytest
from fake_livevox import FakeLiveVox, load_livevox

from gisgate import config
from gisgate.connectors.cursors import Cursors
from gisgate.connectors.livevox import LiveVox
from gisgate.connectors.runner import Poller, Runner
from gisgate.retry import Policy
from tests.conftest import run_cli

ACCESS, PASSWORD = "LVACCESS-0123456789", "lv-PASSWORD-42"


@pytest.fixture
def livevox(monkeypatch):
    monkeypatch.setenv("GISGATE_TEST_LV_PASSWORD", PASSWORD)
    monkeypatch.setenv("GISGATE_TEST_LV_TOKEN", ACCESS)
    server = FakeLiveVox(access=ACCESS, password=PASSWORD, events=load_livevox()).start()
    yield server
    server.stop()


def spec(server, **kw):
    table = {"name": "lv", "kind": "livevox", "route": "lv", "base_url": server.url, "client_name": "acme",
             "username": "gisgate-svc", "password_env": "GISGATE_TEST_LV_PASSWORD",
             "access_token_env": "GISGATE_TEST_LV_TOKEN", "timeout_s": 2, "backoff_seconds": 0.05, **kw}
    return config.parse({"route": [{"name": "lv"}], "source": [table]}).source[0]


def poller(tmp_path, server, **kw) -> Poller:
    return Poller(spec(server, **kw), tmp_path / "inbox", tmp_path / "gisgate.db", threading.Event())


def page(path) -> int:
    m = re.search(r"-p(\d+)\.json$", path.name)
    return int(m[1]) if m else 1


def events_landed(folder, key) -> list[dict]:
    out = []
    for f in sorted(folder.glob(f"lv-{'agentEvent' if key == 'agentEvent' else 'event'}-*.json"), key=page):
        out += json.loads(f.read_bytes())[key]
    return out


def test_each_feed_page_lands_as_returned_and_the_token_is_the_cursor(tmp_path, livevox):
    p = poller(tmp_path, livevox, count=100)
    assert p.poll() == 4 + 3  # 312 agent events in pages of 100, 275 interaction events
    inbox = tmp_path / "inbox"
    assert events_landed(inbox, "agentEvent") == livevox.events["agentEvent"]
    assert events_landed(inbox, "events") == livevox.events["event"]
    calls = livevox.asked("/agentEvent/feed")
    assert calls[0].query == {"count": "100"} and json.loads(calls[0].body) == {}
    assert json.loads(calls[1].body)["token"] in livevox.issued
    assert len(livevox.asked("/login")) == 1
    new = [{**livevox.events["agentEvent"][-1], "seqNum": 999, "eventType": "LOGOFF"}]
    livevox.push("agentEvent", new)
    assert p.poll() == 1  # continues after its token: only the new event
    assert events_landed(inbox, "agentEvent")[-1]["seqNum"] == 999
    assert len(events_landed(inbox, "agentEvent")) == 313
    p.close()


def test_an_idle_feed_lands_nothing_and_a_dropped_session_is_opened_again(tmp_path, livevox):
    p = poller(tmp_path, livevox, feeds=["agentEvent"])
    assert p.poll() == 1
    livevox.drop_sessions()
    assert p.poll() == 0  # waited idle_wait for news, none came
    assert len(livevox.asked("/login")) == 2
    assert len(list((tmp_path / "inbox").iterdir())) == 1
    p.close()


def test_a_token_too_old_starts_a_new_feed_and_says_a_gap_may_exist(tmp_path, livevox):
    p = poller(tmp_path, livevox, feeds=["agentEvent"])
    p.poll()
    livevox.age_tokens()
    livevox.new_feed_from_now = True
    livevox.push("agentEvent", [{**livevox.events["agentEvent"][0], "seqNum": 1000}])  # lost with the old feed
    assert p.poll() == 0
    cursors = Cursors(tmp_path / "gisgate.db")
    row = cursors.get("lv", "agentEvent")
    assert row.gap_at and row.token in livevox.issued
    cursors.close()
    assert p.state.gap
    livevox.push("agentEvent", [{**livevox.events["agentEvent"][0], "seqNum": 1001}])
    assert p.poll() == 1
    p.close()


def test_429_on_a_feed_is_waited_out(tmp_path, livevox):
    livevox.inject("/event/feed", status=429, retry_after=0.3)
    lv = LiveVox(spec(livevox))
    page = lv.feed("event", None)
    assert page.count == 275 and page.token and not page.reset
    assert len(livevox.asked("/event/feed")) == 2
    lv.close()


def test_runner_status_and_metrics_say_the_gap(tmp_path, livevox):
    r = Runner([spec(livevox, feeds=["agentEvent"])], {"lv": tmp_path / "inbox"}, tmp_path / "gisgate.db",
               lambda s: Policy(s.backoff_seconds, 10, 1, s.breaker_failures, s.breaker_seconds))
    r.catch_up()
    livevox.age_tokens()
    r.catch_up()
    assert r.snapshot()["lv"]["gap"] and r.snapshot()["lv"]["lag"] < 5
    r.stop()
    (tmp_path / "gisgate.toml").write_text(f"""
[[route]]
name = "lv"
[[source]]
name = "lv"
kind = "livevox"
route = "lv"
base_url = "{livevox.url}"
client_name = "acme"
username = "gisgate-svc"
password_env = "GISGATE_TEST_LV_PASSWORD"
access_token_env = "GISGATE_TEST_LV_TOKEN"
feeds = ["agentEvent"]
""")
    text = run_cli("status", "--root", tmp_path).stdout
    assert "source lv: a feed started again" in text and "events before may be missing" in text
    r = run_cli("fetch", "lv", "--since", "1d", "--root", tmp_path)
    assert r.returncode == 2 and "event feeds" in r.stderr
    r = run_cli("doctor", "--root", tmp_path, "--target", "lv")
    assert r.returncode == 0 and "session opened as gisgate-svc" in r.stdout, r.stdout
    assert PASSWORD not in r.stdout + r.stderr and ACCESS not in r.stdout + r.stderr


def stats(offered: int, handled: int, talk_avg: float) -> list[dict]:
    return [{"serviceId": "9", "totalOffered": offered, "totalHandled": handled, "totalAbandoned": offered - handled,
             "averageTalkDuration": talk_avg, "averageWrapupDuration": 0, "averageSpeedOfAnswer": 0,
             "totalCallsAnsweredWithinSLA": handled, "totalCallsInQueue": 0}]


def test_service_statistics_are_taken_each_quarter_hour_and_timed_by_their_file_name(tmp_path, livevox):
    """The answer carries no time: the snapshot lands under the time it was taken, and the LiveVox
    reader differences consecutive snapshots into intervals as it does for timestamped ones."""
    from gisgate.config import ConvertOptions
    from gisgate.sources import livevox as reader

    now = [1730694605.0]  # 2024-11-04T04:30:05Z
    p = Poller(spec(livevox, service_stats=["9"], feeds=[]), tmp_path / "inbox", tmp_path / "gisgate.db",
               threading.Event(), lambda: now[0])
    plan = [(0, stats(50, 40, 100)), (300, stats(55, 44, 100)), (900, stats(60, 48, 100)), (1800, stats(3, 3, 80))]
    landed = []
    for at, numbers in plan:  # 04:30:05, 04:35:05 (same quarter: nothing), 04:45:05, 05:00:05 (a new day's counters)
        now[0] = 1730694605.0 + at
        livevox.stats = numbers
        landed.append(p.poll())
    assert landed == [1, 0, 1, 1]
    files = sorted((tmp_path / "inbox").iterdir())
    assert [f.name for f in files] == [f"lv-serviceStats-{t}-{t}.json" for t in
                                       ("20241104T043005Z", "20241104T044505Z", "20241104T050005Z")]
    assert json.loads(files[0].read_bytes()) == {"stats": stats(50, 40, 100)}  # as the API returned it
    q = reader.read(files, ConvertOptions()).queue_intervals
    assert q["offered"].to_list() == [10, 3] and q["handled"].to_list() == [8, 3]
    assert q["talk_s"].to_list() == [800, 240]
