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


def _line_expr(frame: pl.DataFrame, columns: list[Column]) -> pl.Expr:
    """One data line per row. Columns holding only whole numbers take the (much cheaper) integer path."""
    metrics = [c.name for c in columns if c.kind != "id"]
    stats = frame.select(
        *[(pl.col(m) == pl.col(m).round(0)).all().alias(m) for m in metrics],
        *[(pl.col(m).max() < 1e15).alias(f"{m}<") for m in metrics],
    ).row(0, named=True) if metrics else {}
    parts = [
        pl.col(c.name) if c.kind == "id"
        else pl.col(c.name).cast(pl.Int64).cast(pl.String) if stats[c.name] and stats[f"{c.name}<"]
        else number(pl.col(c.name), DECIMALS[c.kind], small=stats[f"{c.name}<"])
        for c in columns
    ]
    return pl.concat_str(parts, separator=",")


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
    intervals at a time, and each interval is a zero-copy slice, so writing N intervals does not
    scan the frame N times.
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
    line = _line_expr(frame, columns)
    starts = frame.group_by("interval_start", maintain_order=True).len().rows()
    offset = 0
    for chunk in _chunks(starts, CHUNK_ROWS):
        size = sum(n for _, n in chunk)
        lines = frame.slice(offset, size).select(line)[:, 0]
        offset += size
        at = 0
        for start, length in chunk:
            body = lines.slice(at, length).str.join(nl).item()
            at += length
            name, local, utc_offset = file_name(start, kind, options)
            header = render_template("gis/header.j2", type=word, start=local, offset=utc_offset, acd=options.acd)
            yield Output(name, f"{header}{nl}{column_line}{nl}{body}{nl}".encode(), out_kind, start)


def render_pairs(queue: pl.DataFrame | None, agent: pl.DataFrame | None,
                 options: ConvertOptions) -> Iterator[Output]:
    """SERVICE and AGENT files merged by interval, so an interval's pair is produced together."""
    services = render(queue, "service", options)
    agents = render(agent, "agent", options)
    yield from heapq.merge(services, agents, key=lambda o: o.interval_start)
