"""Contacts → SERVICE and AGENT interval metrics; AGENT row assembly (derive)."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from gisgate import model
from gisgate.config import ConvertOptions, Mapping
from gisgate.errors import ConfigError
from gisgate.transform import derive
from gisgate.transform.contacts import agent_contacts, queue_intervals

T = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def m(minutes, seconds=0):
    return T + timedelta(minutes=minutes, seconds=seconds)


def contact(
    cid,
    service,
    agent,
    arrived,
    answered,
    ended,
    outcome="answered",
    wait=0.0,
    talk=0.0,
    hold=0.0,
    acw=0.0,
    direction="in",
    transferred=False,
):
    return {
        "contact_id": cid,
        "service_id": service,
        "agent_id": agent,
        "direction": direction,
        "arrived_at": arrived,
        "answered_at": answered,
        "ended_at": ended,
        "outcome": outcome,
        "wait_s": wait,
        "talk_s": talk,
        "hold_s": hold,
        "acw_s": acw,
        "transferred": transferred,
    }


def frame(rows):
    return pl.DataFrame(rows, schema=model.CONTACTS)


def test_s3_example_call_answered_0929_ends_0933():
    # Answered 09:29, ends 09:33, no ACW: 4 min talk counted in 09:30, period handle 1 + 3 min.
    c = frame([contact("1", "10", "7", m(28), m(29), m(33), wait=60, talk=240)])
    out = agent_contacts(c, "UTC", 30)
    rows = {r["interval_start"]: r for r in out.iter_rows(named=True)}
    assert rows[m(0)]["handled"] == 0 and rows[m(0)]["period_handle_s"] == 60
    assert (
        rows[m(30)]["handled"] == 1 and rows[m(30)]["talk_s"] == 240 and rows[m(30)]["period_handle_s"] == 180
    )


def test_queue_attribution_and_service_level():
    c = frame(
        [
            contact("1", "10", "7", m(10), m(10, 10), m(20), wait=10, talk=590),  # SL met, ends in 09:15
            contact("2", "10", "7", m(14), m(14, 50), m(16), wait=50, talk=70),  # answered after threshold
            contact("3", "10", None, m(5), None, m(6), outcome="abandoned", wait=60),
            contact("4", "10", None, m(5), None, m(5, 3), outcome="short_abandoned", wait=3),
            contact("5", "20", "8", m(1), m(1), m(2), direction="out", outcome="outbound", talk=60),
        ]
    )
    out = queue_intervals(c, "UTC", 15, 20.0)
    model.check(out, "QUEUE_INTERVALS", "test")
    first = out.filter((pl.col("interval_start") == T) & (pl.col("service_id") == "10")).row(0, named=True)
    assert (first["offered"], first["answered"], first["handled"], first["abandoned"]) == (3, 2, 0, 1)
    assert first["answer_delay_s"] == 60 and first["service_level_pct"] == pytest.approx(100 / 3)
    second = out.filter((pl.col("interval_start") == m(15)) & (pl.col("service_id") == "10")).row(
        0, named=True
    )
    assert (second["offered"], second["handled"], second["talk_s"], second["service_level_pct"]) == (
        0,
        2,
        660,
        0,
    )
    assert "20" not in out["service_id"].to_list()  # outbound-only queue makes no SERVICE rows


def test_zero_rows_for_every_queue_in_covered_window():
    c = frame(
        [
            contact("1", "10", "7", m(0), m(0), m(50), talk=3000),
            contact("2", "11", "7", m(20), m(20), m(21), talk=60),
        ]
    )
    out = queue_intervals(c, "UTC", 15, 20.0, services=["12"])
    assert out.height == 4 * 3
    assert out.filter(pl.col("service_id") == "12")["offered"].sum() == 0


def states(rows):
    return pl.DataFrame(
        [{"agent_id": a, "at": t, "state": s, "reason": None, "raw_state": s} for a, t, s in rows],
        schema=model.STATE_EVENTS,
    )


def test_agent_rows_combine_states_contacts_and_home_queue():
    c = frame(
        [
            contact("1", "10", "7", m(1), m(2), m(7), talk=300, transferred=True),
            contact("2", "11", "7", m(8), m(8), m(10), talk=120),
        ]
    )
    ev = states(
        [
            ("7", m(0), "READY"),
            ("7", m(2), "TALKING"),
            ("7", m(10), "NOT_READY"),
            ("7", m(20), "READY"),
            ("9", m(0), "NOT_READY"),
            ("7", m(40), "LOGOUT"),
            ("9", m(40), "LOGOUT"),
        ]
    )
    opts = ConvertOptions(interval=15, mapping=Mapping(home_queue={"9": "55"}))
    out = derive(model.Batch(contacts=c, state_events=ev), opts)
    a = out.agent_intervals
    first = a.filter(pl.col("interval_start") == T)
    assert first["agent_id"].to_list() == ["7", "7", "9"]
    assert first["service_id"].to_list() == ["10", "11", "55"]
    assert first["in_session_s"].to_list() == [900.0, 900.0, 900.0]  # repeated on each of the agent's rows
    assert first["transferred_out"].to_list() == [1.0, 0.0, 0.0]
    r7 = first.filter(pl.col("agent_id") == "7")
    assert r7["ready_s"][0] == 120 + 0 and r7["not_ready_s"][0] == 300 - 0  # 09:10-09:15 not ready
    # agent 7 has no contacts after 09:15: one row on its most frequent queue (tie → smallest id)
    later = a.filter((pl.col("agent_id") == "7") & (pl.col("interval_start") == m(15)))
    assert later["service_id"].to_list() == ["10"] and later["in_session_s"][0] == 900
    assert out.queue_intervals is not None and out.source_interval == 15


def test_not_ready_excludes_handling_when_states_disagree():
    # The state feed says Not Ready while the agent handles a contact (Talkdesk "Away" takes transfers).
    c = frame([contact("1", "10", "7", m(0), m(0), m(5), talk=300)])
    ev = states([("7", m(0), "NOT_READY"), ("7", m(15), "LOGOUT")])
    a = derive(model.Batch(contacts=c, state_events=ev), ConvertOptions()).agent_intervals
    assert a["not_ready_s"].to_list() == [600.0] and a["in_session_s"].to_list() == [900.0]


def test_agent_without_any_queue_is_a_usage_error():
    ev = states([("u-1", m(0), "READY")])
    with pytest.raises(ConfigError, match="--service"):
        derive(model.Batch(state_events=ev), ConvertOptions(until="2024-06-03T09:30:00Z"))
    out = derive(model.Batch(state_events=ev), ConvertOptions(until="2024-06-03T09:30:00Z", service="5"))
    assert out.agent_intervals["in_session_s"].sum() == 1800.0
    assert "transferred_out" not in out.agent_intervals.columns and out.queue_intervals is None
