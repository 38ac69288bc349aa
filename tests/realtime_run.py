"""Live agent states, end to end: a fake LiveVox feed → a real `gisgate watch` (a livevox source whose route
sends real-time states) → a fake Webex WFO. Shared by tests/test_connectors_realtime.py and
bench/bench_realtime.py.

Each push adds one state change for each of `agents` agents to the Agent Event Feed; the latency of a
change is from the feed answer that carried it (the poll that returned it) to the arrival of the POST
that carries it at WFO.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from fake_livevox import FakeLiveVox
from fake_wfm import FakeWfm
from gateway_harness import Gate, wait_until

ACCESS, PASSWORD = "LVACCESS-0123456789", "lv-PASSWORD-42"
STATES = ["READY", "IN_CALL", "WRAPUP", "NOT_READY", "READY", "HOLD", "IN_CALL", "WRAPUP"]
CONFIG = """
[acd]
timezone = "America/New_York"

[watch]
converters = {converters}
reports = false

[[route]]
name = "live"
format = "livevox"
outputs = ["rtstate"]
targets = ["wfo"]
settle_seconds = 5   # a partner's drop would wait this long; a fetched page is taken at once

[target.wfo]
kind = "webex"
base_url = "{wfo}"
username = "{user}"
password_env = "GISGATE_TEST_WFO_PASSWORD"
acd_server_id = 1
timeout_s = 5

[[source]]
name = "lv"
kind = "livevox"
route = "live"
base_url = "{lv}"
client_name = "acme"
username = "gisgate-svc"
password_env = "GISGATE_TEST_LV_PASSWORD"
access_token_env = "GISGATE_TEST_LV_TOKEN"
feeds = ["agentEvent"]
every = "0.01s"
timeout_s = 15
"""


@dataclass
class Result:
    changes: int
    sent: int  # state changes WFO received (each counted as often as it came)
    latencies: list[float]  # seconds, one per change received

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def event(agent: int, at_ms: int, state: str, seq: int) -> dict:
    return {"timestamp": at_ms, "clientId": 93119, "agentId": 70000 + agent, "agentLoginId": f"AG{agent}",
            "agentServiceId": 5501, "agentTeamId": 12, "lineNumber": "ACD", "eventType": state, "seqNum": seq,
            **({"notReadyReasonCode": "BREAK"} if state == "NOT_READY" else {})}


def run(folder: Path, pushes: int = 20, agents: int = 5, gap: float = 0.25, converters: int = 0) -> Result:
    """Start the fakes and the gateway, push the changes, wait until WFO has them all; the latencies."""
    lv = FakeLiveVox(access=ACCESS, password=PASSWORD).start()
    lv.idle_wait = 10.0  # a long poll, as LiveVox does
    wfo = FakeWfm().start()
    root = folder / "gw"
    root.mkdir(parents=True)
    mapping = "\n".join(f'AG{a} = "{1000 + a}"' for a in range(1, agents + 1))
    (root / "gisgate.toml").write_text(CONFIG.format(converters=converters, wfo=wfo.url, user=wfo.user, lv=lv.url)
                                       + f"\n[mapping.agents]\n{mapping}\n")
    env = {"GISGATE_TEST_LV_PASSWORD": PASSWORD, "GISGATE_TEST_LV_TOKEN": ACCESS,
           "GISGATE_TEST_WFO_PASSWORD": wfo.password}
    gate = Gate(root, settle=5.0, extra_env=env)
    seq = itertools.count(1)
    try:
        wait_until(lambda: lv.asked("/agentEvent/feed"), 30, what="the feed's first long poll")
        start_ms = int(time.time() * 1000) - 60_000
        for n in range(pushes):
            lv.push("agentEvent", [event(a, start_ms + n * 1000 + a, STATES[(n + a) % len(STATES)], next(seq))
                                   for a in range(1, agents + 1)])
            time.sleep(gap)
        total = pushes * agents
        wait_until(lambda: sum(len(u.body) for u in wfo.uploads_of("rtstate")) >= total, 60,
                   what="every state change at WFO")
        time.sleep(0.5)  # anything sent twice would come now
    finally:
        gate.stop()
        lv.stop()
        wfo.stop()
    polled = {(e["agentLoginId"], int(e["timestamp"])): at for at, page in lv.answered for e in page}
    latencies = []
    sent = 0
    for upload in wfo.uploads_of("rtstate"):
        for change in upload.body:
            sent += 1
            key = (f"AG{int(change['acdAgentId']) - 1000}", int(change["timestamp"]))
            latencies.append(upload.at - polled[key])
    return Result(pushes * agents, sent, latencies)
