"""A `gisgate watch` that fetches, killed (-9) while a call is in flight or between landing a file and
moving its cursor: started again, it continues where it stopped and the target ends exactly as if the
same data had been dropped by hand once: nothing lost, nothing doubled."""

from __future__ import annotations

from fake_platforms import FakeLinkLive
from gateway_harness import Gate, query, wait_until
from test_connectors_watch import CONFIG, KEY, SOURCE, by_hand, caught_up, contents, recent_day

OVERLAP = 900


def gateway(tmp_path, server):
    root = tmp_path / "fetching"
    root.mkdir()
    source = SOURCE.format(url=server.base_url).replace("timeout_s = 2", "timeout_s = 30")
    (root / "gisgate.toml").write_text(CONFIG.format(source=source))
    return root, {"GISGATE_TEST_LL_KEY": KEY}


def cursor(root) -> float:
    return query(root, "SELECT cursor FROM source_cursors WHERE source='ll' AND what='userStates'")[0][0]


def finish(root, env, expected, server) -> None:
    gate = Gate(root, extra_env=env, log="watch-2")
    try:
        wait_until(lambda: caught_up(root), 60, what="the source to catch up after the restart")
        wait_until(lambda: contents(root / "dataserver") == expected, 60, what="the whole day delivered")
    finally:
        gate.stop()
    # no temp file left behind (a file landed by a poll just before the stop waits for the next run)
    assert not [p for p in (root / "inbox").rglob("*") if p.name.startswith(".")]


def test_kill_9_while_a_fetch_is_in_flight_loses_and_doubles_nothing(tmp_path):
    records = recent_day()
    expected = by_hand(tmp_path, records)
    server = FakeLinkLive(key=KEY, records=records).start()
    server.inject("/userStates", delay=20, after=4)  # the fifth window hangs: the gateway dies waiting
    root, env = gateway(tmp_path, server)
    try:
        gate = Gate(root, extra_env=env)
        wait_until(lambda: len(server.asked("/userStates")) >= 5, 60, what="the fifth window in flight")
        gate.kill()
        at_kill = cursor(root)
        asked = len(server.asked("/userStates"))
        finish(root, env, expected, server)
        again = server.asked("/userStates")[asked]  # the first window asked after the restart
        assert int(again.query["startTime"]) == at_kill - OVERLAP  # continues from the cursor: no gap
    finally:
        server.stop()


def test_kill_9_between_landing_a_file_and_moving_its_cursor_fetches_that_window_again(tmp_path):
    records = recent_day()
    expected = by_hand(tmp_path, records)
    server = FakeLinkLive(key=KEY, records=records).start()
    root, env = gateway(tmp_path, server)
    try:
        gate = Gate(root, crash="fetch-landed:5", extra_env=env)
        assert gate.wait_exit(60) == -9
        landed = sorted(p.name for p in (root / "inbox" / "linklive").iterdir()) + \
            [n for n, in query(root, "SELECT name FROM inputs")]
        starts = [r.query["startTime"] for r in server.requests if "startTime" in r.query]
        finish(root, env, expected, server)
        after = [r.query["startTime"] for r in server.requests if "startTime" in r.query][len(starts):]
        assert starts[-1] in after  # the window landed before the crash was asked again
        assert landed
    finally:
        server.stop()
