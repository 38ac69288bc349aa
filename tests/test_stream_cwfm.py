"""A stream route into CommunityWFM Cloud Connect: drops cut by time and by queue, overlapping,
repeated, a late correction, through real `gisgate watch --once` runs into a real local Cloud Connect
server (tests/fake_wfm.py refuses a second insert of a key, as the service does), end with the
server holding exactly the records that one `gisgate convert --to cwfm` of all of the data, sent
with `gisgate deliver`, leaves there; call volume sent again only as updates, and only when it
changed; every agent state change sent once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gateway_harness import REPO, env
from stream_check import config, csv_rows, feed, naive_utc
from test_stream_sources import SAMPLES, at, csv_bytes, json_part, platform_mapping, windows

PASSWORD_ENV = "GISGATE_TEST_CWFM_PASSWORD"
CASE = SAMPLES / "cwfm" / "input"


@pytest.fixture(autouse=True)
def password(monkeypatch, fake_wfm):
    monkeypatch.setenv(PASSWORD_ENV, fake_wfm.password)


def cloud_config(tmp: Path, server, **route) -> Path:
    more = (f'[target.cc]\nkind = "cwfm"\nbase_url = "{server.url}"\nusername = "{server.user}"\n'
            f'password_env = "{PASSWORD_ENV}"\ntimeout_s = 5\n')
    return config(tmp, "cwfm", tz="America/New_York", mapping=platform_mapping("cwfm", default_service="101"),
                  outputs=["cwfm"], targets=["cc"], more=more, route=route)


def held(server) -> dict[str, dict]:
    """What the server holds, table → key → record, without the insert/update flag."""
    return {table: {k: {f: v for f, v in r.items() if f != "UpdateExisting"} for k, r in rows.items()}
            for table, rows in server.rows.items()}


def one_shot(tmp: Path, inputs: list[Path], cfg: Path, server) -> dict[str, dict]:
    """One `gisgate convert --to cwfm` of everything, sent by `gisgate deliver`: what the server holds."""
    out = tmp / "reference"

    def gisgate(*args: str) -> None:
        r = subprocess.run([sys.executable, "-m", "gisgate", *args], cwd=REPO, env=env(), capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout

    gisgate("convert", *map(str, inputs), "--from", "cwfm", "--to", "cwfm", "--config", str(cfg), "--out", str(out),
            "--quiet")
    gisgate("deliver", *sorted(map(str, out.glob("cwfm-*.json"))), "--target", "cc", "--config", str(cfg))
    return held(server)


@pytest.mark.parametrize("crash", [None, "after-realtime-stage:2", "after-stage:1", "after-commit:2",
                                   "after-archive:3"])
def test_a_cloud_connect_stream_ends_as_one_conversion_sent_once(tmp_path, fake_wfm, crash):
    """With `crash`, the first run is killed there (like kill -9) and the next one finishes."""
    from fake_wfm import FakeWfm

    first, second, fixed, volumes, q101, doc = drops()
    cfg = cloud_config(tmp_path, fake_wfm)
    feed(tmp_path / "gw", cfg, first + second, runs=[len(first), len(second)], crash=crash)

    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({**doc, "CallVolumeUpdates": [fixed if v is q101[3] else v for v in volumes]}))
    reference = FakeWfm().start()
    try:
        want = one_shot(tmp_path, [CASE / "agent_updates.csv", whole], cloud_config(tmp_path / "ref", reference),
                        reference)
    finally:
        reference.stop()
    assert set(want) == {"CallVolumeUpdates", "CollectionPointInserts", "AgentUpdates", "AgentInserts"}
    assert held(fake_wfm) == want

    # each key went as an insert once; only the corrected interval went again, as an update
    sent = [r for u in fake_wfm.uploads_of("CallVolumeUpdates") for r in u.body["CallVolumeUpdates"]]
    updates = [r for r in sent if r["UpdateExisting"] == "true"]
    assert len(sent) == len(want["CallVolumeUpdates"]) + len(updates)
    assert [(r["CollectionPoint"], r["ContactsOffered"]) for r in updates] == [("101", fixed["ContactsOffered"])]
    events = [r for u in fake_wfm.uploads_of("AgentUpdates") for r in u.body["AgentUpdates"]]
    assert len(events) == len(want["AgentUpdates"])


def test_without_corrections_a_changed_record_is_counted_and_not_sent(tmp_path, fake_wfm):
    """New records still go (queue 102's intervals, after queue 101's went): only a changed one stays."""
    first, second, fixed, volumes, *_ = drops()
    cfg = cloud_config(tmp_path, fake_wfm, corrections=False)
    feed(tmp_path / "gw", cfg, first + second, runs=[len(first), len(second)])
    assert len(fake_wfm.rows["CallVolumeUpdates"]) == len(volumes)
    assert {k[1] for k in fake_wfm.rows["CollectionPointInserts"]} == {v["CollectionPoint"] for v in volumes}
    sent = [r for u in fake_wfm.uploads_of("CallVolumeUpdates") for r in u.body["CallVolumeUpdates"]]
    assert all(r["UpdateExisting"] == "false" for r in sent)
    key = (fixed["CollectionPoint"], naive_utc(fixed["Interval"]).strftime("%Y-%m-%d %H:%M:%S"))
    kept = {k[1:]: r for k, r in fake_wfm.rows["CallVolumeUpdates"].items()}[key]
    assert kept["ContactsOffered"] == str(int(fixed["ContactsOffered"]) - 7)
    status = subprocess.run([sys.executable, "-m", "gisgate", "status", "--root", str(tmp_path / "gw"), "--config",
                             str(cfg), "--json"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["streams"]["r"]["corrections"] == 1


def drops():
    """The sample's AgentUpdates cut by time (overlapping, one window twice) and its CallVolume by queue,
    in two runs; the second corrects an interval of queue 101 that the first sent."""
    header, rows = csv_rows(CASE / "agent_updates.csv")
    parts = windows(rows, lambda r: naive_utc(r["EventTime"]), [at(5, 7, 30), at(5, 52), at(6, 23, 11)],
                    overlap_s=400)
    agents = [(f"agents-{i}.csv", csv_bytes(header, p)) for i, p in enumerate(parts)]
    doc = json.loads((CASE / "call_volume.json").read_text())
    volumes = doc["CallVolumeUpdates"]
    q101 = [v for v in volumes if v["CollectionPoint"] == "101"]
    q102 = [v for v in volumes if v["CollectionPoint"] != "101"]
    first = [*agents[:2], ("volume-101.json", json_part(doc, "CallVolumeUpdates", q101)),
             ("agents-1-again.csv", agents[1][1])]
    # the second run: the rest, another queue, and a late correction of an interval already sent
    fixed = {**q101[3], "ContactsOffered": str(int(q101[3]["ContactsOffered"]) + 7)}
    second = [*agents[2:], ("volume-102.json", json_part(doc, "CallVolumeUpdates", q102)),
              ("volume-101-fix.json", json_part(doc, "CallVolumeUpdates", [fixed]))]
    return first, second, fixed, volumes, q101, doc
