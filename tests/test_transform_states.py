"""State spans → interval seconds: exact splitting on the local clock, DST days, properties."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgate import model
from gisgate.transform.states import spans, state_seconds

T0 = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)  # 00:00 EDT on the New York fall-back day


def events(rows):
    return pl.DataFrame(
        [{"agent_id": a, "at": t, "state": s, "reason": None, "raw_state": s} for a, t, s in rows],
        schema=model.STATE_EVENTS,
    )


def test_span_is_split_exactly_at_boundaries():
    ev = events([("7", T0 + timedelta(minutes=10), "READY"), ("7", T0 + timedelta(minutes=40), "LOGOUT")])
    out = state_seconds(ev, "America/New_York", 15, T0 + timedelta(hours=1))[0].sort("interval_start")  # (in no order)
    assert out["interval_start"].to_list() == [T0, T0 + timedelta(minutes=15), T0 + timedelta(minutes=30)]
    assert out["ready_s"].to_list() == [300.0, 900.0, 600.0]
    assert out["in_session_s"].to_list() == [300.0, 900.0, 600.0]


def test_fall_back_hour_gives_two_distinct_local_one_oclock_intervals():
    # 05:00Z = 01:00 EDT, 06:00Z = 01:00 EST: 2 h Ready = 8 intervals, none merged.
    start = datetime(2024, 11, 3, 5, 0, tzinfo=UTC)
    ev = events([("a", start, "READY")])
    out, _ = state_seconds(ev, "America/New_York", 15, start + timedelta(hours=2))
    assert out.height == 8
    assert set(out["ready_s"]) == {900.0}


def test_kathmandu_boundaries_are_quarter_past_utc():
    t = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)  # 09:45 local
    ev = events([("a", t, "NOT_READY")])
    out = state_seconds(ev, "Asia/Kathmandu", 30, t + timedelta(minutes=30))[0].sort("interval_start")
    assert out["interval_start"].to_list() == [
        datetime(2024, 6, 1, 3, 45, tzinfo=UTC),
        datetime(2024, 6, 1, 4, 15, tzinfo=UTC),
    ]
    assert out["not_ready_s"].to_list() == [900.0, 900.0]


def test_open_span_clipped_at_export_end_and_long_span_cut():
    ev = events([("a", T0, "READY"), ("b", T0, "READY")])
    out, warnings = state_seconds(ev, "UTC", 15, T0 + timedelta(minutes=20))
    assert out.filter(pl.col("agent_id") == "a")["in_session_s"].sum() == 1200.0
    ev = events([("a", T0, "READY"), ("a", T0 + timedelta(hours=20), "LOGOUT")])
    out, warnings = state_seconds(ev, "UTC", 15, T0 + timedelta(hours=30), max_span_hours=12)
    assert out["in_session_s"].sum() == 12 * 3600
    assert "1 state span" in warnings[0]


def test_duplicates_dropped_and_ms_precision_kept():
    t = T0 + timedelta(milliseconds=250)
    ev = events([("a", t, "READY"), ("a", t, "READY"), ("a", T0 + timedelta(minutes=1), "LOGOUT")])
    sp, _ = spans(ev, T0 + timedelta(hours=1), 12)
    assert sp.collect().height == 2
    out, _ = state_seconds(ev, "UTC", 15, T0 + timedelta(hours=1))
    assert out["ready_s"].to_list() == [59.75]


STATES = st.sampled_from(model.STATES)


@st.composite
def event_lists(draw):
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        agent = draw(st.sampled_from(["a", "b", "c"]))
        ms = draw(st.integers(0, 36 * 3600 * 1000))  # across the fall-back day
        rows.append((agent, datetime(2024, 11, 2, 20, 0, tzinfo=UTC) + timedelta(milliseconds=ms), draw(STATES)))
    return rows


@settings(max_examples=150, deadline=None)
@given(
    event_lists(),
    st.sampled_from([15, 30]),
    st.sampled_from(["America/New_York", "Asia/Kathmandu", "UTC", "Australia/Lord_Howe"]),
    st.randoms(),
)
def test_properties_of_the_splitter(rows, minutes, tz, rnd):
    until = datetime(2024, 11, 4, 8, 0, tzinfo=UTC)
    ev = events(rows)
    got = state_seconds(ev, tz, minutes, until, max_span_hours=1000)[0]
    out = got.sort("interval_start", "agent_id")
    assert got.equals(out)  # 0. given in key order
    # 1. per agent, the interval seconds sum to the in-session time covered by the spans
    sp = spans(ev, until, 1000)[0].collect()
    covered = (
        sp.filter(pl.col("state") != "LOGOUT")
        .group_by("agent_id")
        .agg(((pl.col("end") - pl.col("start")).dt.total_microseconds().sum()).alias("us"))
    )
    got = out.group_by("agent_id").agg((pl.col("in_session_s").sum() * 1e6).round(0).alias("us"))
    assert dict(covered.iter_rows()) == {a: int(v) for a, v in got.iter_rows()}
    # 2. no interval holds more than its length
    assert (out["in_session_s"] <= minutes * 60 + 1e-9).all()
    assert (
        (out["ready_s"] + out["not_ready_s"] + out["handling_s"] + out["reserved_s"]) <= out["in_session_s"] + 1e-6
    ).all()
    # 3. input order does not matter
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = state_seconds(events(shuffled), tz, minutes, until, max_span_hours=1000)[0].sort(
        "interval_start", "agent_id"
    )
    assert again.equals(out)


@settings(max_examples=60, deadline=None)
@given(event_lists(), st.integers(1, 6))
def test_runs_of_a_few_agents_give_the_result_of_one_run(rows, chunk):
    """state_seconds works a few agents at a time (runs of about CHUNK events, never splitting an
    agent): the rows are those of one run, for packed codes, for unpacked ones and for a compact
    (categorical) frame."""
    from gisgate.transform import states

    until = datetime(2024, 11, 4, 8, 0, tzinfo=UTC)
    ev = events(rows)
    whole = state_seconds(ev, "America/New_York", 15, until)[0].sort("interval_start", "agent_id")
    old = states.CHUNK
    try:
        states.CHUNK = chunk
        small = state_seconds(ev, "America/New_York", 15, until)[0].sort("interval_start", "agent_id")
        compact = ev.with_columns(pl.col("agent_id", "state").cast(pl.Categorical))
        cat = state_seconds(compact, "America/New_York", 15, until)[0].sort("interval_start", "agent_id")
        # times ten thousand years apart: the codes no longer fit in 63 bits, pairs are sorted unpacked
        far = ev.vstack(events([("y", datetime(1, 1, 1, tzinfo=UTC), "LOGOUT"),
                                ("z", datetime(9999, 1, 1, tzinfo=UTC), "READY")]))
        unpacked = state_seconds(far, "America/New_York", 15, until)[0].sort("interval_start", "agent_id")
    finally:
        states.CHUNK = old
    assert small.equals(whole)
    assert cat.equals(whole)
    assert unpacked.equals(whole)


def test_microseconds_become_the_nearest_float_of_their_seconds():
    """`seconds` gives what exact division gives (7000 µs is 0.007, not 0.006999999999999999), for
    sums of any size a conversion meets, and for negative ones."""
    import random

    from gisgate.transform.split import seconds

    rnd = random.Random(7)
    values = [7000, 500, 1, 0, -3, 2**53 - 1, -(2**53 - 1), 10**18 + 1]
    values += [rnd.randrange(-10**12, 10**12) for _ in range(100_000)]
    got = pl.DataFrame({"us": values}).select(seconds(pl.col("us")))["us"].to_list()
    assert got == [v / 1e6 for v in values]


@settings(max_examples=60, deadline=None)
@given(event_lists(), st.sampled_from([15, 30]), st.sampled_from(["America/New_York", "Asia/Kathmandu", "UTC"]))
def test_integer_cut_gives_what_the_local_clock_split_gives(rows, minutes, tz):
    """Where the zone's offset is one constant modulo the interval, spans are cut in integers on
    the UTC clock and summed by running totals; elsewhere (Lord Howe) `split` cuts them on the
    local clock and a group-by sums them. Both give the same rows."""
    from gisgate.transform import states

    until = datetime(2024, 11, 4, 8, 0, tzinfo=UTC)
    ev = events(rows)
    fast = state_seconds(ev, tz, minutes, until)[0].sort("interval_start", "agent_id")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(states, "utc_residue", lambda *a: None)
        general = state_seconds(ev, tz, minutes, until)[0].sort("interval_start", "agent_id")
    assert fast.equals(general)
