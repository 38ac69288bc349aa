"""`--to cwfm` and `--to rtstate` renderers: shapes, types, batches, determinism."""

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.render import cwfm, rtstate

T = datetime(2024, 11, 3, 5, 0, tzinfo=UTC)


def queue(intervals: int, services: int) -> pl.DataFrame:
    rows = [
        {
            "interval_start": T + timedelta(minutes=15 * i),
            "service_id": str(s),
            "offered": 10.0,
            "handled": 7.0,
            "answered": 8.0,
            "abandoned": 2.0,
            "talk_s": 100.5,
            "hold_s": 3.0,
            "acw_s": 20.0,
            "answer_delay_s": 9.0,
            "service_level_pct": 87.5,
        }
        for i in range(intervals)
        for s in range(services)
    ]
    return pl.DataFrame(rows, schema={k: v for k, v in model.QUEUE_INTERVALS.items() if k in rows[0]})


def events(rows):
    return pl.DataFrame(
        [{"agent_id": a, "at": t, "state": s, "reason": r, "raw_state": s} for a, t, s, r in rows],
        schema=model.STATE_EVENTS,
    )


def test_call_volume_batches_never_split_an_interval():
    out = list(cwfm.render(model.Batch(queue_intervals=queue(100, 7)), ConvertOptions(cwfm_account_id="3")))
    bodies = [json.loads(o.data) for o in out if "callvolume" in o.name]
    assert [len(b["CallVolumeUpdates"]) for b in bodies] == [497, 203]
    first = bodies[0]["CallVolumeUpdates"][0]
    assert bodies[0]["AccountId"] == "3"
    assert first == {
        "UpdateExisting": "false",
        "CollectionPoint": "0",
        "Interval": "2024-11-03 05:00:00",
        "ContactsOffered": "10",
        "ContactsNotHandled": "2",
        "TalkTime": "120.5",
        "HoldTime": "3",
        "ServiceLevelPct": "87.5",
    }
    names = [o.name for o in out]
    assert names == ["cwfm-callvolume-0001.json", "cwfm-callvolume-0002.json", "cwfm-collectionpoints-0001.json"]


def test_agent_activity_codes_reasons_and_people():
    ev = events(
        [
            ("7", T, "WORK_NOT_READY", None),
            ("7", T + timedelta(seconds=1), "NOT_READY", "Lunch break 12"),
            ("8", T, "TALKING", None),
        ]
    )
    out = {o.name: json.loads(o.data) for o in cwfm.render(model.Batch(state_events=ev), ConvertOptions())}
    updates = out["cwfm-agentactivity-0001.json"]["AgentUpdates"]
    assert updates == [
        {"AgentId": "7", "EventTime": "2024-11-03 05:00:00", "Activity": "Wrapup"},
        {"AgentId": "8", "EventTime": "2024-11-03 05:00:00", "Activity": "OnCall"},
        {"AgentId": "7", "EventTime": "2024-11-03 05:00:01", "Activity": "NotReady", "ReasonCode": "Lunch brea"},
    ]
    assert [p["AgentId"] for p in out["cwfm-people-0001.json"]["AgentInserts"]] == ["7", "8"]


def test_rtstate_types_reason_codes_and_batches():
    # three agents changing between Ready and Talking (a repeated state would be no change: dropped)
    rows = [(str(i % 3), T + timedelta(milliseconds=250 * i), ("READY", "TALKING")[i // 3 % 2], None)
            for i in range(1195)]
    rows += [
        ("a", T, "NOT_READY", "7"),
        ("a", T, "NOT_READY", "7"),
        ("b", T, "LOGOUT", "Shift end"),
        ("c", T, "RESERVED", None),
        ("d", T, "READY", "9"),
        ("e", T, "HOLD", None),
    ]
    out = list(rtstate.render(model.Batch(state_events=events(rows)), ConvertOptions()))
    arrays = [json.loads(o.data) for o in out]
    assert [len(a) for a in arrays] == [500, 500, 200]
    assert [o.name for o in out] == ["rtstate-0001.json", "rtstate-0002.json", "rtstate-0003.json"]
    by_agent = {e["acdAgentId"]: e for e in arrays[0] if e["acdAgentId"] in "abcde"}
    assert by_agent["a"] == {"acdAgentId": "a", "gisStateIdentifier": "2", "timestamp": 1730610000000, "reasonCode": 7}
    assert by_agent["b"]["reasonCode"] == "Shift end" and by_agent["b"]["gisStateIdentifier"] == "1"
    assert by_agent["c"]["gisStateIdentifier"] == "2" and "reasonCode" not in by_agent["d"]
    assert by_agent["e"]["gisStateIdentifier"] == "10"
    stamps = [e["timestamp"] for a in arrays for e in a]
    assert stamps == sorted(stamps)
    again = list(rtstate.render(model.Batch(state_events=events(list(reversed(rows)))), ConvertOptions()))
    assert [o.data for o in again] == [o.data for o in out]


def test_rtstate_one_state_change_is_one_event():
    """A Talkdesk agent's last status `Offline` is a logout, and the end of that status is no second one."""
    rows = [("a", T, "READY", None), ("a", T + timedelta(minutes=10), "NOT_READY", "Away"),
            ("a", T + timedelta(minutes=20), "LOGOUT", None), ("a", T + timedelta(minutes=60), "LOGOUT", None),
            ("b", T, "NOT_READY", "Lunch"), ("b", T + timedelta(minutes=5), "NOT_READY", "Lunch"),
            ("b", T + timedelta(minutes=9), "NOT_READY", "Break"), ("b", T + timedelta(minutes=12), "RESERVED", None),
            ("b", T + timedelta(minutes=13), "NOT_READY", None)]  # Reserved and Not Ready are both GIS 2
    (out,) = rtstate.render(model.Batch(state_events=events(rows)), ConvertOptions())
    got = [(e["acdAgentId"], e["gisStateIdentifier"], e.get("reasonCode")) for e in json.loads(out.data)]
    assert [g for g in got if g[0] == "a"] == [("a", "3", None), ("a", "2", "Away"), ("a", "1", None)]
    assert [g for g in got if g[0] == "b"] == [("b", "2", "Lunch"), ("b", "2", "Break"), ("b", "2", None)]


def test_rtstate_from_talkdesk_offline_is_one_logout(tmp_path, cli):
    status = tmp_path / "user_status.csv"
    status.write_text(
        "user_id,user_name,user_email,status_label,status_start_at,status_end_at,status_time,is_user_active\n"
        "a1,A,a1@x.com,Available,2024-11-03 10:00:00,2024-11-03 10:10:00,600,true\n"
        "a1,A,a1@x.com,Offline,2024-11-03 10:10:00,2024-11-03 11:00:00,3000,true\n")
    r = cli("convert", status, "--from", "talkdesk", "--to", "rtstate", "--service", "1", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    events = json.loads((tmp_path / "o" / "rtstate-0001.json").read_text())
    assert [(e["gisStateIdentifier"], e["timestamp"]) for e in events] == [("3", 1730628000000), ("1", 1730628600000)]
