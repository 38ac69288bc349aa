"""GIS data lines against a plain-Python reference, whatever the chunking.

The renderer prints a chunk's whole-number columns as integers and the others as text, and sizes
its buffer from the values' widths; the chunk size (and so that choice) must never show in the bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgate.config import ConvertOptions
from gisgate.render import gis

METRICS = ["handled", "talk_s", "ready_s"]  # a count, prorated and unprorated seconds
START = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)

# (value, text a GIS file shows): whole numbers of any size, up to three decimals, and -0.
whole = st.integers(0, 10**16).map(lambda k: (float(k), str(int(float(k)))))  # as the double holds it
decimal = st.tuples(st.integers(0, 10**14), st.integers(1, 3)).map(  # below 1e12, as sources check
    lambda kd: (kd[0] / 10 ** kd[1], format(Decimal(kd[0]).scaleb(-kd[1]).normalize(), "f")))
value = st.one_of(whole, decimal, st.just((-0.0, "0")))
row = st.tuples(st.integers(0, 3), st.text("AB7", min_size=1, max_size=3), value, value, value)


@settings(max_examples=120, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=40, unique_by=lambda r: (r[0], r[1])), chunk=st.integers(1, 12))
def test_lines_match_a_plain_reference_for_any_chunking(rows, chunk):
    frame = pl.DataFrame(
        {"interval_start": [START + timedelta(minutes=15 * r[0]) for r in rows],
         "agent_id": [r[1] for r in rows], "service_id": ["Q1"] * len(rows),
         **{m: [r[2 + i][0] for r in rows] for i, m in enumerate(METRICS)}},
        schema_overrides={"interval_start": pl.Datetime("us", "UTC")},
    )
    with mock.patch.object(gis, "CHUNK_ROWS", chunk):  # rows formatted at a time
        outputs = list(gis.render_frame(frame, "agent", ConvertOptions(tz="America/New_York")))

    expected: dict[int, list[str]] = {}
    for r in sorted(rows, key=lambda r: (r[0], r[1])):
        expected.setdefault(r[0], []).append(",".join([r[1], "Q1", *(v[1] for v in r[2:])]))
    assert [o.interval_start for o in outputs] == [START + timedelta(minutes=15 * i) for i in sorted(expected)]
    for output, lines in zip(outputs, expected.values(), strict=True):
        body = output.data.decode().split("\r\n")
        assert body[1] == "acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalUnproratedReadyWaitingSeconds"
        assert body[2:] == [*lines, ""]

