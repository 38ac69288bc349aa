"""GIS data lines against a plain-Python reference, whatever the chunking.

The renderer prints a chunk's whole-number columns as integers and the others as text, and sizes
its buffer from the values' widths; the chunk size (and so that choice) must never show in the bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgate.config import ConvertOptions
from gisgate.render import gis

METRICS = ["handled", "talk_s", "ready_s"]  # a count, prorated and unprorated seconds
START = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)

# Values as exports hold them: whole numbers of any size, up to three decimals (below 1e12, as sources
# check), more decimals than a GIS file shows (which it rounds away), exact binary ties (x.0625, x.125:
# half away from zero rounds them up, half to even would not), and -0.
whole = st.integers(0, 10**16).map(float)
exact = st.tuples(st.integers(0, 10**14), st.integers(1, 3)).map(lambda kd: kd[0] / 10 ** kd[1])
fine = st.integers(4, 9).flatmap(lambda d: st.integers(0, 10 ** (9 + d) - 1).map(lambda k: k / 10**d))
ties = st.tuples(st.integers(0, 10**8), st.integers(0, 2**12)).map(lambda kj: kj[0] + kj[1] / 2**12)
value = st.one_of(whole, exact, fine, ties, st.just(-0.0))
row = st.tuples(st.integers(0, 3), st.text("AB7", min_size=1, max_size=3), value, value, value)


def shown(x: float, decimals: int) -> frozenset[str]:
    """What a GIS file may show for `x`: rounded half away from zero at `decimals` (3 for counts and
    seconds, 2 for percents), plain, without trailing zeros. Rounding the double's exact value or
    its shortest decimal form (as the export wrote it) differs only within a rounding error of a
    tie, which the vectorised rounding may take either way: both are right."""
    q = Decimal(1).scaleb(-decimals)
    return frozenset(format(Decimal(v).quantize(q, ROUND_HALF_UP).normalize(), "f") for v in (abs(x), repr(abs(x))))


def test_the_reference_rounds_half_away_from_zero():
    assert shown(12.34567, 3) == {"12.346"} and shown(2.0625, 3) == {"2.063"} and shown(0.125, 2) == {"0.13"}
    assert shown(0.0004, 3) == {"0"} and shown(-0.0, 3) == {"0"} and shown(1e16, 3) == {"10000000000000000"}


def check_lines(outputs, rows: list[tuple[int, list[str], list[float]]], column_line: str, decimals: list[int]):
    """Each interval's data lines against `rows` (interval number, key texts, values): the keys as
    given, each value one of the texts `shown` allows."""
    expected: dict[int, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r[0], r[1])):
        expected.setdefault(r[0], []).append(r)
    assert [o.interval_start for o in outputs] == [START + timedelta(minutes=15 * i) for i in sorted(expected)]
    for output, interval_rows in zip(outputs, expected.values(), strict=True):
        body = output.data.decode().split("\r\n")
        assert body[1] == column_line and body[-1] == ""
        assert len(body[2:-1]) == len(interval_rows)
        for line, (_, keys, values) in zip(body[2:-1], interval_rows, strict=True):
            fields = line.split(",")
            assert fields[:len(keys)] == keys, line
            for text, x, d in zip(fields[len(keys):], values, decimals, strict=True):
                assert text in shown(x, d), f"{x!r} printed as {text!r}, not as {' or '.join(sorted(shown(x, d)))}"


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=40, unique_by=lambda r: (r[0], r[1])), chunk=st.integers(1, 12))
def test_lines_match_a_plain_reference_for_any_chunking(rows, chunk):
    frame = pl.DataFrame(
        {"interval_start": [START + timedelta(minutes=15 * r[0]) for r in rows],
         "agent_id": [r[1] for r in rows], "service_id": ["Q1"] * len(rows),
         **{m: [r[2 + i] for r in rows] for i, m in enumerate(METRICS)}},
        schema_overrides={"interval_start": pl.Datetime("us", "UTC")},
    )
    with mock.patch.object(gis, "CHUNK_ROWS", chunk):  # rows formatted at a time
        outputs = list(gis.render_frame(frame, "agent", ConvertOptions(tz="America/New_York")))
    check_lines(outputs, [(r[0], [r[1], "Q1"], list(r[2:])) for r in rows],
                "acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalUnproratedReadyWaitingSeconds",
                [3, 3, 3])


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), value, value), min_size=1, max_size=4, unique_by=lambda r: r[0]),
       chunk=st.integers(1, 3))
def test_percents_show_two_decimals_and_seconds_three(rows, chunk):
    frame = pl.DataFrame(
        {"interval_start": [START + timedelta(minutes=15 * r[0]) for r in rows], "service_id": ["Q1"] * len(rows),
         "talk_s": [r[1] for r in rows], "service_level_pct": [r[2] for r in rows]},
        schema_overrides={"interval_start": pl.Datetime("us", "UTC")},
    )
    with mock.patch.object(gis, "CHUNK_ROWS", chunk):
        outputs = list(gis.render_frame(frame, "service", ConvertOptions(tz="America/New_York")))
    check_lines(outputs, [(r[0], ["Q1"], list(r[1:])) for r in rows],
                "acdServiceId,totalTalkSeconds,serviceLevelPercent", [3, 2])
