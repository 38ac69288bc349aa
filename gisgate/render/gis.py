"""GIS files: one `AgentProductivity.AGENT` and/or `ServiceHistorical.SERVICE` per interval (§1.3–1.10).

    <yyyyMMddHHmm><N|P><HHMM>_<ACD>_ServiceHistorical.SERVICE
    SERVICE DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: 1
    acdServiceId,contactsOffered,...            (required columns, then the optional ones present)
    9912306,12,10,11,1,2311.5,120,340,96,83.33  (one line per service, sorted)

The name's date/time is the interval's local start in the ACD zone and the offset is the one in
force at that instant, so the two 01:00 intervals of a fall-back day get different names.
"""

from __future__ import annotations

import heapq
import io
import itertools
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.model import AGENT_COLUMNS, QUEUE_COLUMNS, Column, Output, is_sorted, present
from gisgate.render import DECIMALS, NEWLINES, number, render_template

KINDS = {
    # canonical frame → (GIS type word, file suffix, output kind, columns, sort keys)
    "agent": ("AGENT", "AgentProductivity.AGENT", "gis-agent", AGENT_COLUMNS, ["agent_id", "service_id"]),
    "service": ("SERVICE", "ServiceHistorical.SERVICE", "gis-service", QUEUE_COLUMNS, ["service_id"]),
}


def _text_columns(frame: pl.DataFrame, columns: list[Column]) -> list[pl.Expr]:
    """Each column as the text a GIS file shows. Columns holding only whole numbers take the (much
    cheaper) integer path."""
    metrics = [c.name for c in columns if c.kind != "id"]
    stats = frame.select(
        *[(pl.col(m) == pl.col(m).round(0)).all().alias(m) for m in metrics],
        *[(pl.col(m).max() < 1e15).alias(f"{m}<") for m in metrics],
    ).row(0, named=True) if metrics else {}
    return [
        pl.col(c.name) if c.kind == "id"
        else pl.col(c.name).cast(pl.Int64).cast(pl.String) if stats[c.name] and stats[f"{c.name}<"]
        else number(pl.col(c.name), DECIMALS[c.kind], small=stats[f"{c.name}<"])
        for c in columns
    ]


def _lines(text: pl.DataFrame, nl: str) -> tuple[memoryview, pl.Series]:
    """All rows of `text` (string columns) as CSV lines in one buffer, and each line's end offset.

    polars' CSV writer joins the columns (faster than building one string per line); the values
    need no quoting (IDs were checked to hold no comma, quote or blank; the rest are numbers).
    """
    buf = io.BytesIO()
    text.write_csv(buf, include_header=False, quote_style="never", line_terminator=nl)
    width = text.width - 1 + len(nl)  # separators and line end
    ends = text.select((pl.sum_horizontal(pl.all().str.len_bytes()).cast(pl.Int64) + width).cum_sum())[:, 0]
    data = buf.getbuffer()
    if len(data) != (ends[-1] if len(ends) else 0):
        raise RuntimeError("GIS data lines are not the expected length")  # a value was quoted or escaped
    return data, ends


def file_name(start_utc: datetime, kind: str, options: ConvertOptions) -> tuple[str, datetime, object]:
    """The GIS file name of one interval, and its local start and UTC offset."""
    local = start_utc.astimezone(ZoneInfo(options.tz))
    offset = local.utcoffset()
    name = render_template("gis/filename.j2", start=local, offset=offset, acd=options.acd,
                           utc_token=options.utc_offset_token, suffix=KINDS[kind][1])
    return name, local, offset


CHUNK_ROWS = 250_000  # lines formatted at a time: bounds memory, keeps the per-call overhead small


def _chunks(starts: list[tuple[datetime, int]], rows: int) -> Iterator[list[tuple[datetime, int]]]:
    """Consecutive intervals grouped until a group would pass `rows` lines (a group has at least one)."""
    chunk: list[tuple[datetime, int]] = []
    for item in starts:
        if chunk and sum(n for _, n in chunk) + item[1] > rows:
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def render(frame: pl.DataFrame | None, kind: str, options: ConvertOptions) -> Iterator[Output]:
    """Yield one Output per interval of `frame`, in chronological order.

    The frame is sorted once (if it is not already); lines are formatted vectorised a chunk of
    intervals at a time into one buffer, and each interval's body is a slice of it, so writing N
    intervals does not scan the frame N times.
    """
    if frame is None or frame.is_empty():
        return
    word, _, out_kind, all_columns, keys = KINDS[kind]
    columns = [c for c in present(frame, all_columns) if c.gis]
    nl = NEWLINES[options.newline]
    column_line = ",".join(c.gis for c in columns)
    order = ["interval_start", *keys]
    if not is_sorted(frame, order):
        frame = frame.sort(order)
    parts = _text_columns(frame, columns)
    runs = frame.select(pl.col("interval_start").rle()).unnest("interval_start")  # sorted: one run each
    starts = list(zip(runs["value"], runs["len"], strict=True))
    offset = 0
    for chunk in _chunks(starts, CHUNK_ROWS):
        size = sum(n for _, n in chunk)
        data, ends = _lines(frame.slice(offset, size).select(parts), nl)
        offset += size
        last_rows = itertools.accumulate(n for _, n in chunk)
        at = 0
        for (start, _), end in zip(chunk, ends.gather([r - 1 for r in last_rows]).to_list(), strict=True):
            name, local, utc_offset = file_name(start, kind, options)
            header = render_template("gis/header.j2", type=word, start=local, offset=utc_offset, acd=options.acd)
            yield Output(name, f"{header}{nl}{column_line}{nl}".encode() + data[at:end], out_kind, start)
            at = end


def render_pairs(queue: pl.DataFrame | None, agent: pl.DataFrame | None,
                 options: ConvertOptions) -> Iterator[Output]:
    """SERVICE and AGENT files merged by interval, so an interval's pair is produced together."""
    services = render(queue, "service", options)
    agents = render(agent, "agent", options)
    yield from heapq.merge(services, agents, key=lambda o: o.interval_start)
