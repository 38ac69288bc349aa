"""The stream contract as properties: whatever the cut, the arrival order and the kill -9s, a stream
route's folder target ends up holding exactly the files one `gisgate convert` of all of the route's
data writes (same names, byte for byte).

"All of the data": state events are the union of the drops (an event in two drops counts once);
interval rows are the latest row per key, in the order the gateway took the drops (a drop whose bytes
it already took is a duplicate and changes nothing). Every example runs real `gisgate watch --once`
processes (tests/stream_check.py) on random data around the New York fall-back hour (2024-11-03,
01:00-01:59 local twice: 05:00-07:00 UTC), and the reference convert runs beside them.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stream_check import assert_same, config, feed, reference

NY = "America/New_York"
T0 = datetime(2024, 11, 3, 3, 30, tzinfo=UTC)  # 23:30 EDT the evening before; data runs 5 hours from here
SPAN_S = 5 * 3600
SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))
CRASH_POINTS = ["after-stream-take", "after-stage", "after-commit", "after-archive"]


def example_dir(tmp_path: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path))


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode()


# -- cutting ---------------------------------------------------------------------------------------

@st.composite
def cuts(draw, times: list[int], entities: list[str]) -> list[list[int]]:
    """Which records (by index) go into which drop: cut at random instants (inside intervals), by entity
    (queue / agent), into overlapping time windows, or scattered at random (a record may land in two
    drops); then maybe one drop sent twice. Empty drops are left out."""
    n = len(times)
    how = draw(st.sampled_from(["time", "entity", "overlap", "scatter"]))
    k = draw(st.integers(2, 4))
    if how in ("time", "overlap"):
        edges = sorted(draw(st.lists(st.integers(0, SPAN_S), min_size=k - 1, max_size=k - 1)))
        back = draw(st.integers(60, 3600)) if how == "overlap" else 0
        bounds = list(zip([-10**9, *edges], [*edges, 10**9], strict=True))
        parts = [[i for i in range(n) if lo - back <= times[i] < hi] for lo, hi in bounds]
    elif how == "entity":
        owner = {e: draw(st.integers(0, k - 1)) for e in sorted(set(entities))}
        parts = [[i for i in range(n) if owner[entities[i]] == j] for j in range(k)]
    else:
        homes = draw(st.lists(st.lists(st.integers(0, k - 1), min_size=1, max_size=2), min_size=n, max_size=n))
        parts = [[i for i in range(n) if j in homes[i]] for j in range(k)]
    parts = [p for p in parts if p]
    if draw(st.booleans()):
        parts.append(parts[draw(st.integers(0, len(parts) - 1))])  # the same list: the same bytes again
    return parts


@st.composite
def arrival(draw, n: int) -> tuple[list[int], list[int]]:
    """An arrival order of `n` drops, and how many of them each `--once` run finds in the inbox."""
    order = draw(st.permutations(range(n)))
    runs = [n] if n < 2 or draw(st.booleans()) else [(h := draw(st.integers(1, n - 1))), n - h]
    return list(order), runs


# -- (a) CommunityWFM AgentUpdates: state events ----------------------------------------------------

# No LoggedOut: a logout arriving after the events around it can empty an interval the stream already sent
# an AGENT file for (see the expected failure at the end); logouts are covered by the shipped samples.
ACTIVITIES = ["Ready", "NotReady", "OnCall", "Wrapup", "Hold", "Coaching"]
EVENT_HEADER = ["AgentId", "EventTime", "Activity", "ReasonCode"]


@st.composite
def agent_updates(draw) -> list[list]:
    """Random agents' events over five hours (seconds apart, in both of CWFM's date forms)."""
    rows = []
    for agent in draw(st.lists(st.sampled_from(["1001", "1002", "1003", "1004"]), min_size=1, max_size=4,
                               unique=True)):
        offsets = draw(st.lists(st.integers(0, SPAN_S), min_size=1, max_size=25, unique=True))
        for s in sorted(offsets):
            t = T0 + timedelta(seconds=s)
            text = (f"{t:%Y-%m-%d %H:%M:%S}" if draw(st.booleans())
                    else f"{t.month}/{t.day}/{t.year} {t.hour}:{t:%M:%S}")
            activity = draw(st.sampled_from(ACTIVITIES))
            reason = draw(st.sampled_from(["", "Break", "Lunch"])) if activity == "NotReady" else ""
            rows.append([agent, text, activity, reason, s])
    return rows


@st.composite
def event_case(draw):
    rows = draw(agent_updates())
    parts = draw(cuts([r[4] for r in rows], [r[0] for r in rows]))
    drops = [(f"agents-{j}.csv", csv_bytes(EVENT_HEADER, [rows[i][:4] for i in p])) for j, p in enumerate(parts)]
    order, runs = draw(arrival(len(drops)))
    return rows, [drops[i] for i in order], runs


def check_events(tmp: Path, rows, drops, runs, crash=None) -> None:
    cfg = config(tmp, "cwfm", tz=NY, mapping={"default_service": "101"})
    whole = tmp / "all.csv"
    whole.write_bytes(csv_bytes(EVENT_HEADER, [r[:4] for r in rows]))
    ref = reference(tmp, [whole], cfg, "cwfm")
    got = feed(tmp / "gw", cfg, drops, runs, crash)
    assert_same(got, ref.result(), f"drops {[n for n, _ in drops]}, runs {runs}, crash {crash}")


@SETTINGS
@given(case=event_case())
def test_agent_events_cut_anywhere_end_as_one_convert(tmp_path, case):
    rows, drops, runs = case
    check_events(example_dir(tmp_path), rows, drops, runs)


# -- (b) generic interval rows with corrections -------------------------------------------------------

SERVICE_HEADER = ["periodStart", "acdServiceId", "contactsOffered", "contactsHandled", "contactsAnswered",
                  "contactsAbandoned", "totalTalkSeconds", "totalHoldSeconds", "totalAfterContactWorkSeconds",
                  "totalAnswerDelaySeconds", "serviceLevelPercent"]
AGENT_HEADER = ["periodStart", "acdAgentId", "acdServiceId", "contactsHandled", "totalTalkSeconds",
                "totalHoldSeconds", "totalAfterContactWorkSeconds", "totalPeriodHandleTimeSeconds",
                "totalUnproratedReadyWaitingSeconds", "totalUnproratedNotReadyBusySeconds",
                "totalUnproratedInSessionSeconds"]
SLOTS = 20  # 15-minute intervals from 04:00 UTC (00:00 EDT) to 09:00 UTC (04:00 EST)


def period(slot: int, utc: bool) -> str:
    t = datetime(2024, 11, 3, 4, tzinfo=UTC) + timedelta(minutes=15 * slot)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if utc else t.astimezone(_ny()).isoformat()


def _ny():
    from zoneinfo import ZoneInfo

    return ZoneInfo(NY)


def seconds():
    return st.one_of(st.integers(0, 3000), st.integers(0, 30000).map(lambda v: v / 10))


@st.composite
def service_values(draw) -> list:
    offered = draw(st.integers(0, 30))
    handled = draw(st.integers(0, offered))
    return [offered, handled, handled, offered - handled, draw(seconds()), draw(seconds()), draw(seconds()),
            draw(seconds()), draw(st.integers(0, 1000).map(lambda v: v / 10))]


@st.composite
def agent_values(draw) -> list:
    return [draw(st.integers(0, 9)), draw(seconds()), draw(seconds()), draw(seconds()), draw(seconds())]


@st.composite
def interval_rows(draw):
    """Service rows {(slot, service): values} and agent rows {(slot, agent, service): values} (an agent's
    unprorated seconds the same on its rows of one interval), on a random run of intervals."""
    first = draw(st.integers(0, SLOTS - 4))
    slots = range(first, draw(st.integers(first + 2, SLOTS)))
    services = draw(st.lists(st.sampled_from(["101", "102", "103"]), min_size=1, max_size=3, unique=True))
    queue = {}
    for slot in slots:
        for s in services:
            if draw(st.integers(0, 5)) or not queue:
                queue[(slot, s)] = draw(service_values())
    agent, unprorated = {}, {}
    for slot in slots:
        for a in draw(st.lists(st.sampled_from(["7001", "7002", "7003"]), max_size=3, unique=True)):
            in_session = draw(st.integers(0, 900))
            ready = draw(st.integers(0, in_session))
            unprorated[(slot, a)] = [ready, draw(st.integers(0, in_session - ready)), in_session]
            for s in draw(st.lists(st.sampled_from(services), min_size=1, max_size=2, unique=True)):
                agent[(slot, a, s)] = draw(agent_values())
    return queue, agent, unprorated


def row(key: tuple, values: list, unprorated: dict, utc: bool) -> list:
    if len(key) == 2:
        return [period(key[0], utc), key[1], *values]
    return [period(key[0], utc), key[1], key[2], *values, *unprorated[(key[0], key[1])]]


@st.composite
def interval_case(draw):
    queue, agent, unprorated = draw(interval_rows())
    drops = []  # (name, bytes, {key: values})
    for what, rows, header in (("service", queue, SERVICE_HEADER), ("agent", agent, AGENT_HEADER)):
        keys = sorted(rows)
        if not keys:
            continue
        parts = draw(cuts([k[0] * 900 + 1 for k in keys], [k[1] for k in keys]))
        made: dict[int, tuple] = {}
        for p in parts:
            if id(p) not in made:
                utc = draw(st.booleans())
                taken = {keys[i]: rows[keys[i]] for i in p}
                made[id(p)] = (csv_bytes(header, [row(k, v, unprorated, utc) for k, v in taken.items()]), taken)
            drops.append((f"{what}-{len(drops)}.csv", *made[id(p)]))
        for _ in range(draw(st.integers(0, 2))):  # corrections: some keys again with new values
            fixed = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
            new = {k: draw(service_values() if what == "service" else agent_values()) for k in sorted(fixed)}
            drops.append((f"{what}-{len(drops)}-fix.csv",
                          csv_bytes(header, [row(k, v, unprorated, False) for k, v in new.items()]), new))
    order, runs = draw(arrival(len(drops)))
    return unprorated, [drops[i] for i in order], runs


def final_rows(drops, unprorated) -> dict[str, list[list]]:
    """The latest row per key in arrival order; a drop with the bytes of one taken before changes nothing."""
    latest, seen = {}, set()
    for _, data, taken in drops:
        if data in seen:
            continue
        seen.add(data)
        latest.update(taken)
    return {"service": [row(k, v, unprorated, False) for k, v in sorted(latest.items()) if len(k) == 2],
            "agent": [row(k, v, unprorated, False) for k, v in sorted(latest.items()) if len(k) == 3]}


def check_intervals(tmp: Path, unprorated, drops, runs, crash=None) -> None:
    cfg = config(tmp, "generic", tz=NY)
    inputs = []
    for what, rows in final_rows(drops, unprorated).items():
        if rows:
            inputs.append(tmp / f"{what}.csv")
            inputs[-1].write_bytes(csv_bytes(SERVICE_HEADER if what == "service" else AGENT_HEADER, rows))
    ref = reference(tmp, inputs, cfg, "generic")
    got = feed(tmp / "gw", cfg, [(n, b) for n, b, _ in drops], runs, crash)
    assert_same(got, ref.result(), f"drops {[n for n, _, _ in drops]}, runs {runs}, crash {crash}")


@SETTINGS
@given(case=interval_case())
def test_interval_rows_cut_and_corrected_end_as_one_convert_of_the_latest_rows(tmp_path, case):
    unprorated, drops, runs = case
    check_intervals(example_dir(tmp_path), unprorated, drops, runs)


# -- kill -9 -----------------------------------------------------------------------------------------

@SETTINGS
@given(kind=st.sampled_from(["events", "intervals"]), events=event_case(), intervals=interval_case(),
       point=st.sampled_from(CRASH_POINTS), nth=st.integers(1, 3))
def test_killed_at_a_crash_point_the_next_run_ends_in_the_same_folder(tmp_path, kind, events, intervals, point, nth):
    """The first `--once` run dies like `kill -9` at the nth time it reaches `point` (when it does); the
    next run finishes, and the folder is still one convert of everything."""
    tmp = example_dir(tmp_path)
    if kind == "events":
        rows, drops, runs = events
        check_events(tmp, rows, drops, runs, crash=f"{point}:{nth}")
    else:
        unprorated, drops, runs = intervals
        check_intervals(tmp, unprorated, drops, runs, crash=f"{point}:{nth}")


def test_a_correction_taken_back_is_sent_again(tmp_path):
    """Found by the properties above: an interval sent as A, corrected to B, then back to A (by a drop
    whose bytes differ from the first one) must end as A; the ledger took A for "already delivered"
    because some earlier delivery of that name had A's bytes."""
    a, b = [10, 9, 9, 1, 100, 0, 0, 5, 90], [12, 9, 9, 3, 100, 0, 0, 5, 80]
    drops = [("01-a.csv", csv_bytes(SERVICE_HEADER, [row((1, "101"), a, {}, False)]), {(1, "101"): a}),
             ("02-b.csv", csv_bytes(SERVICE_HEADER, [row((1, "101"), b, {}, False)]), {(1, "101"): b}),
             ("03-a-again.csv", csv_bytes(SERVICE_HEADER, [row((1, "101"), a, {}, True), row((2, "101"), a, {}, True)]),
              {(1, "101"): a, (2, "101"): a})]
    check_intervals(tmp_path, {}, drops, [1, 1, 1])


@pytest.mark.xfail(strict=True, reason="an interval whose agents all turn out logged out has no AGENT file in a "
                                       "one-shot convert, but the stream already sent one and cannot take it back")
def test_an_interval_emptied_by_a_later_logout_leaves_no_agent_file(tmp_path):
    """Drop 1: agent 1001 Not Ready from 03:48:31 until Ready at 04:15:20 UTC (so logged in all of the
    04:00 interval, 00:00 EDT); drop 2: the same agent LoggedOut at 03:52:27. One convert of both writes
    no AGENT file for 00:00 EDT; the stream sent one after drop 1 and nothing replaces it."""
    rows = [["1001", "2024-11-03 03:30:00", "NotReady", "", 0], ["1001", "2024-11-03 03:48:31", "NotReady", "", 1111],
            ["1001", "2024-11-03 03:52:27", "LoggedOut", "", 1347], ["1001", "2024-11-03 04:15:20", "Ready", "", 2720]]
    drops = [("01.csv", csv_bytes(EVENT_HEADER, [r[:4] for r in rows if r[2] != "LoggedOut"])),
             ("02.csv", csv_bytes(EVENT_HEADER, [r[:4] for r in rows if r[2] == "LoggedOut"]))]
    check_events(tmp_path, rows, drops, [1, 1])
