"""The connector framework against a real local LinkLive server: `[[source]]` config, windows and cursors,
landing, retries (429/503 with Retry-After, a hanging answer), the breaker, secrets kept out of sight,
`gisgate fetch`, `doctor` and `status`."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from fake_platforms import FakeLinkLive

from gisgate import config
from gisgate.connectors.cursors import Cursors
from gisgate.connectors.runner import Poller, Runner
from gisgate.connectors.windows import Window, plan, stamp, windows
from gisgate.errors import ConfigError, FetchError
from gisgate.retry import Policy
from tests.conftest import run_cli

KEY = "llapi_TESTKEY0123456789abcdef"
DAY = 1730592000  # 2024-11-03T00:00:00Z


def source(**kw) -> dict:
    return {"name": "ll", "kind": "linklive", "route": "ll", "base_url": "https://api.example.com/v2/organizations/o",
            "api_key_env": "GISGATE_TEST_LL_KEY", **kw}


def parse(**kw):
    return config.parse({"route": [{"name": "ll"}], "source": [source(**kw)]}).source[0]


# -- config -------------------------------------------------------------------------------------------


def test_a_source_table_parses_durations_and_defaults():
    spec = parse(every="30s", overlap="20m", start="2d", max_window="6h")
    assert (spec.every, spec.overlap, spec.max_window) == (30.0, 1200.0, 21600.0)
    assert spec.first_start(DAY) == DAY - 2 * 86400
    assert parse(start="2024-11-03T04:00:00Z").first_start(0) == DAY + 4 * 3600


@pytest.mark.parametrize("change, message", [
    ({"api_key": KEY}, "unknown key `api_key` in [[source]] #1 (did you mean `api_key_env`?)"),
    ({"every": "5 minutes"}, "not a duration like 30s"),
    ({"route": "nowhere"}, "source 'll' names unknown route 'nowhere'"),
    ({"overlap": "2h", "max_window": "1h"}, "overlap (7200 s) must be shorter than max_window"),
    ({"api_key_file": "/x"}, "set exactly one of api_key_env or api_key_file"),
    ({"base_url": "https://user:pw@h.example"}, "is not an http(s) URL"),
    ({"start": "yesterday"}, "neither a duration"),
])
def test_bad_source_tables_are_refused_clearly(change, message):
    with pytest.raises(ConfigError) as e:
        parse(**change)
    assert message in str(e.value)


# -- windows ------------------------------------------------------------------------------------------


def test_a_source_must_fill_a_route_that_takes_its_files():
    routes = [{"name": "ll", "format": "talkdesk"}, {"name": "done", "done_file": True}, {"name": "auto"}]
    with pytest.raises(ConfigError) as e:
        config.parse({"route": routes, "source": [source(), source(name="b", route="done"), source(name="b")]})
    text = str(e.value)
    assert "source 'll' (linklive) fills route 'll' whose format is 'talkdesk'" in text
    assert "route 'done' takes a file only beside a .done marker" in text and "source name 'b' is used twice" in text
    assert config.parse({"route": routes, "source": [source(route="auto")]}).source[0].route == "auto"


def test_windows_start_at_start_reach_back_by_overlap_and_stop_at_now():
    spec = parse(start="2024-11-03T00:00:00Z", overlap="10m", max_window="1h")
    assert plan(None, DAY + 5000.7, spec) == Window(DAY, DAY + 3600)
    assert plan(DAY + 3600, DAY + 5000.7, spec) == Window(DAY + 3000, DAY + 5000)
    assert plan(DAY + 5000, DAY + 5000.7, spec) is None  # caught up
    assert windows(DAY, DAY + 7200 + 1, 3600) == [Window(DAY, DAY + 3600), Window(DAY + 3600, DAY + 7200),
                                                  Window(DAY + 7200, DAY + 7201)]
    assert stamp(DAY + 16200) == "20241103T043000Z"


# -- polling against the fake server --------------------------------------------------------------------


@pytest.fixture
def linklive():
    server = FakeLinkLive(key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("GISGATE_TEST_LL_KEY", KEY)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def poller(tmp_path, server, clock, **kw) -> Poller:
    spec = parse(base_url=server.base_url, start="2024-11-03T04:00:00Z", overlap="10m", max_window="1h",
                 timeout_s=1, backoff_seconds=0.05, **kw)
    return Poller(spec, tmp_path / "inbox", tmp_path / "gisgate.db", threading.Event(), clock)


def test_a_poll_lands_one_file_per_window_as_returned_and_moves_the_cursor(tmp_path, linklive, key):
    clock = Clock(DAY + 4 * 3600 + 2 * 3600 + 120)  # two hours and two minutes after start
    p = poller(tmp_path, linklive, clock)
    assert p.poll() == 6  # 3 windows x 2 endpoints
    names = sorted(f.name for f in (tmp_path / "inbox").iterdir())
    assert names[0] == "ll-queueEngagementIntervals-20241103T040000Z-20241103T050000Z.json"
    assert "ll-userStates-20241103T045000Z-20241103T055000Z.json" in names  # reaches back 10 minutes
    assert "ll-userStates-20241103T054000Z-20241103T060200Z.json" in names
    asked = linklive.asked("/userStates")
    second = {"startTime": str(DAY + 4 * 3600 + 3000), "endTime": str(DAY + 5 * 3600 + 3000)}
    assert [r.query for r in asked][1] == second
    assert asked[0].headers["Authorization"] == f"ApiKey {KEY}"
    body = (tmp_path / "inbox" / names[0]).read_bytes()
    assert json.loads(body)["queueEngagementIntervals"]  # the API's answer, byte for byte
    cursors = Cursors(tmp_path / "gisgate.db")
    assert cursors.get("ll", "userStates").cursor == clock.now // 1
    clock.now += 30
    assert p.poll() == 2  # one more window each, from the cursor minus the overlap
    assert linklive.asked("/userStates")[-1].query["startTime"] == str(int(clock.now - 30 - 600))
    cursors.close()
    p.close()


def test_429_and_503_with_retry_after_are_honoured_and_a_hanging_answer_times_out(tmp_path, linklive, key):
    clock = Clock(DAY + 4 * 3600 + 1800)
    p = poller(tmp_path, linklive, clock, fetch=["userStates"])
    linklive.inject("/userStates", status=429, retry_after=0.6)
    linklive.inject("/userStates", status=503, retry_after=0.3)
    linklive.inject("/userStates", delay=1.5)  # longer than timeout_s = 1
    t0 = time.monotonic()
    assert p.poll() == 1
    assert time.monotonic() - t0 >= 0.9 + 1.0  # both Retry-Afters waited, and the timeout
    assert len(linklive.asked("/userStates")) == 4
    p.close()


def test_a_refused_key_fails_the_poll_without_moving_the_cursor_or_showing_the_key(tmp_path, linklive, key, caplog):
    caplog.set_level(logging.DEBUG)
    linklive.key = "llapi_OTHER"
    clock = Clock(DAY + 4 * 3600 + 1800)
    p = poller(tmp_path, linklive, clock)
    with pytest.raises(FetchError) as e:
        p.poll()
    assert not e.value.transient and "HTTP 401" in str(e.value) and "check the credentials" in str(e.value)
    cursors = Cursors(tmp_path / "gisgate.db")
    row = cursors.get("ll", "userStates")
    assert row.cursor is None and "HTTP 401" in row.last_error
    assert not list((tmp_path / "inbox").glob("*")) if (tmp_path / "inbox").exists() else True
    assert KEY not in caplog.text and KEY not in str(e.value)
    cursors.close()
    p.close()


def test_pages_land_as_files_of_their_own(tmp_path, key):
    server = FakeLinkLive(key=KEY, page_size=20).start()
    try:
        p = poller(tmp_path, server, Clock(DAY + 5 * 3600), fetch=["userStates"])
        assert p.poll() == 2
        names = sorted(f.name for f in (tmp_path / "inbox").iterdir())
        assert names == ["ll-userStates-20241103T040000Z-20241103T050000Z-p2.json",
                         "ll-userStates-20241103T040000Z-20241103T050000Z.json"]
        assert server.asked("/userStates")[1].query["pageToken"] == "20"
        p.close()
    finally:
        server.stop()


def test_the_breaker_opens_after_failed_polls_and_the_backoff_grows(tmp_path, linklive, key):
    linklive.inject("/userStates", status=500, times=100)
    spec = parse(base_url=linklive.base_url, retries=0, breaker_failures=2, breaker_seconds=60, backoff_seconds=1)
    r = Runner([spec], {"ll": tmp_path / "inbox"}, tmp_path / "gisgate.db",
               lambda s: Policy(s.backoff_seconds, 100, 1, s.breaker_failures, s.breaker_seconds))
    waits = [r._attempt(r.pollers[0]) for _ in range(2)]
    assert 0.5 <= waits[0] <= 1.0 and waits[1] == 60
    snap = r.snapshot()["ll"]
    assert snap["breaker_open"] and snap["errors"] == 2 and "HTTP 500" in snap["last_error"]
    r.stop()


# -- commands ---------------------------------------------------------------------------------------------

CONFIG = """
[[route]]
name = "ll"
format = "linklive"

[[source]]
name = "ll"
kind = "linklive"
route = "ll"
base_url = "{url}"
api_key_env = "GISGATE_TEST_LL_KEY"
max_window = "1h"
"""


def test_fetch_backfills_into_a_folder_and_leaves_the_cursor(tmp_path, linklive, key):
    (tmp_path / "gisgate.toml").write_text(CONFIG.format(url=linklive.base_url))
    r = run_cli("fetch", "ll", "--since", "2024-11-03T04:00:00Z", "--until", "2024-11-03T06:30:00Z",
                "--root", tmp_path, "--out", tmp_path / "backfill")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("6 file(s) fetched\n")
    assert len(list((tmp_path / "backfill").iterdir())) == 6
    assert not (tmp_path / "gisgate.db").exists()
    r = run_cli("fetch", "nope", "--since", "1d", "--root", tmp_path)
    assert r.returncode == 2 and "no [[source]] named 'nope'" in r.stderr


def test_doctor_probes_each_source_and_status_shows_it(tmp_path, linklive, key, monkeypatch):
    (tmp_path / "gisgate.toml").write_text(CONFIG.format(url=linklive.base_url))
    r = run_cli("doctor", "--root", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "source ll" in r.stdout and "API key accepted, 2 queue(s)" in r.stdout
    monkeypatch.setenv("GISGATE_TEST_LL_KEY", "llapi_WRONGKEY")
    r = run_cli("doctor", "--root", tmp_path)
    assert r.returncode == 4 and "HTTP 401" in r.stdout and "llapi_WRONGKEY" not in r.stdout
    monkeypatch.setenv("GISGATE_TEST_LL_KEY", KEY)
    cursors = Cursors(tmp_path / "gisgate.db")
    cursors.advance("ll", "userStates", cursor=time.time() - 100)
    cursors.failed("ll", "queueEngagementIntervals", "source 'll': GET queueEngagementIntervals: HTTP 503")
    cursors.close()
    r = run_cli("status", "--root", tmp_path, "--json")
    src = json.loads(r.stdout)["sources"]["ll"]
    assert src["last_error"].endswith("HTTP 503") and src["lag"] is None  # one endpoint has no cursor yet
    text = run_cli("status", "--root", tmp_path).stdout
    assert "source ll (linklive → route ll)" in text and "last error: queueEngagementIntervals" in text


def test_temp_files_of_a_killed_fetch_are_swept_at_start(tmp_path, key):
    from gisgate.connectors.landing import land, sweep

    inbox = tmp_path / "inbox"
    land(inbox, "ll-userStates-a-b.json", b"{}", "ll")
    (inbox / ".~gisgate-fetch-ll-0123.part").write_bytes(b"half")
    (inbox / ".~gisgate-fetch-other-0123.part").write_bytes(b"not ours")
    assert sweep(inbox, "ll") == 1
    assert sorted(p.name for p in inbox.iterdir()) == [".~gisgate-fetch-other-0123.part", "ll-userStates-a-b.json"]
