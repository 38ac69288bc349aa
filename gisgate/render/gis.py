"""GIS files: one `AgentProductivity.AGENT` and/or `ServiceHistorical.SERVICE` per interval (§1.3–1.10).

    <yyyyMMddHHmm><N|P><HHMM>_<ACD>_ServiceHistorical.SERVICE
    SERVICE DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: 1
    acdServiceId,contactsOffered,...            (required columns, then the optional ones present)
    9912306,12,10,11,1,2311.5,120,340,96,83.33  (one line per service, sorted)

The name's date/time is the interval's local start in the ACD zone and the offset is the one in
force at that instant, so the two 01:00 intervals of a fall-back day get different names.
"""

from __future__ import annotations

import collections
import heapq
import io
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.model import AGENT_COLUMNS, QUEUE_COLUMNS, Batch, Column, Output, is_sorted, present
from gisgate.produced import GIS_HEADER_WORD, gis_name
from gisgate.render import DECIMALS, NEWLINES, number, render_template

KINDS = {
    # canonical frame → (output kind, columns, sort keys)
    "agent": ("gis-agent", AGENT_COLUMNS, ["agent_id", "service_id"]),
    "service": ("gis-service", QUEUE_COLUMNS, ["service_id"]),
}


def _text_columns(frame: pl.DataFrame, columns: list[Column]) -> list[tuple[pl.Expr, pl.Expr]]:
    """Each column as (value the CSV writer prints as the GIS file shows it, its width in bytes).

    Columns holding only whole numbers below 1e15 go out as Int64, which the writer prints itself
    (much cheaper than text); their width is counted from the column's largest value: one digit,
    plus one for each power of ten a value reaches. Either path writes a whole number the same
    way, so the choice may differ from chunk to chunk.
    """
    metrics = [c.name for c in columns if c.kind != "id"]
    stats = frame.select(
        *[(pl.col(m) == pl.col(m).round(0)).all().alias(m) for m in metrics],
        *[pl.col(m).max().alias(f"{m}^") for m in metrics],
    ).row(0, named=True) if metrics else {}
    out = []
    for c in columns:
        col = pl.col(c.name)  # widths are computed over the values, which keep the column's name
        top = stats.get(f"{c.name}^") or 0
        if c.kind == "id":
            out.append((col, col.str.len_bytes()))
        elif stats[c.name] and top < 1e15:
            powers = [col >= 10**k for k in range(1, len(str(int(top))))]
            out.append((col.cast(pl.Int64), pl.sum_horizontal(pl.lit(1, pl.Int64), *powers)))
        else:
            out.append((number(col, DECIMALS[c.kind], top), col.str.len_bytes()))
    return out


def _lines(rows: pl.DataFrame, columns: list[tuple[pl.Expr, pl.Expr]], nl: str) -> tuple[memoryview, pl.Series]:
    """All `rows` as CSV lines of `columns` (value, width) in one buffer, and each line's end offset.

    polars' CSV writer joins the columns (faster than building one string per line); the values
    need no quoting (IDs were checked to hold no comma, quote or blank; the rest are numbers).
    The line lengths are known beforehand, so the buffer is allocated once at its final size.
    """
    text = rows.lazy().select(value for value, _ in columns).collect()  # lazily: polars splits the rows over cores
    width = text.width - 1 + len(nl)  # separators and line end
    ends = text.select((pl.sum_horizontal(w for _, w in columns).cast(pl.Int64) + width).cum_sum())[:, 0]
    buf = _Buffer(ends[-1] if len(ends) else 0)
    text.write_csv(buf, include_header=False, quote_style="never", line_terminator=nl)
    if buf.at != len(buf.view):
        raise RuntimeError("GIS data lines are not the expected length")  # a value was quoted or escaped
    return buf.view, ends


class _Buffer(io.RawIOBase):
    """A write-only file over a preallocated buffer: no growing, no copying it around."""

    def __init__(self, size: int) -> None:
        self.view = memoryview(bytearray(size))
        self.at = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = len(data)
        if self.at + n > len(self.view):
            raise RuntimeError("GIS data lines are longer than expected")  # a value was quoted or escaped
        self.view[self.at:self.at + n] = data
        self.at += n
        return n


def file_name(start_utc: datetime, kind: str, options: ConvertOptions) -> tuple[str, datetime, object]:
    """The GIS file name of one interval, and its local start and UTC offset."""
    local = start_utc.astimezone(ZoneInfo(options.tz))
    offset = local.utcoffset()
    name = gis_name(local, offset, options.acd, kind, options.utc_offset_token)
    return name, local, offset


CHUNK_ROWS = 250_000  # lines formatted at a time: bounds memory, keeps the per-call overhead small
# Chunks formatted ahead, each on its own thread: parts of the formatting run on one core only, so
# two chunks at once keep both cores busy while this thread hands out the files.
AHEAD = 2


def _chunks(starts: list[tuple[datetime, int]], rows: int) -> Iterator[list[tuple[datetime, int]]]:
    """Consecutive intervals grouped until a group would pass `rows` lines (a group has at least one)."""
    chunk: list[tuple[datetime, int]] = []
    size = 0
    for item in starts:
        if chunk and size + item[1] > rows:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item[1]
    if chunk:
        yield chunk


def render_frame(frame: pl.DataFrame | None, kind: str, options: ConvertOptions,
                 ordered: bool = False, rows: pl.Series | None = None) -> Iterator[Output]:
    """Yield one Output per interval of `frame`, in chronological order.

    Lines are formatted vectorised a chunk of whole intervals at a time into one buffer, and each
    interval's body is a slice of it, so writing N intervals does not scan the frame N times. A
    chunk holds whole intervals, so putting each chunk in key order puts the frame in key order;
    the check (and the sort, when needed) happens chunk by chunk on the formatting thread, unless
    the caller knows the frame is `ordered` by interval and key already, or gives the frame's `rows`
    in key order (a chunk is then gathered in that order).
    """
    if frame is None or frame.is_empty():
        return
    out_kind, all_columns, keys = KINDS[kind]
    word = GIS_HEADER_WORD[kind]
    columns = [c for c in present(frame, all_columns) if c.gis]
    nl = NEWLINES[options.newline]
    column_line = ",".join(c.gis for c in columns)
    sort_keys = ["interval_start", *keys]
    if rows is None and not frame["interval_start"].is_sorted():
        frame = frame.sort(sort_keys)
    starts = frame["interval_start"] if rows is None else frame["interval_start"].gather(rows)
    runs = starts.rle().struct.unnest()  # sorted: one run each
    del starts
    chunks = list(_chunks(list(zip(runs["value"], runs["len"], strict=True)), CHUNK_ROWS))
    bounds = list(itertools.accumulate((sum(n for _, n in chunk) for chunk in chunks), initial=0))

    def lines(i: int) -> tuple[memoryview, pl.Series]:
        at, n = bounds[i], bounds[i + 1] - bounds[i]
        if rows is not None:
            chunk = frame.gather(rows.slice(at, n))
        else:
            chunk = frame.slice(at, n)
            if not ordered and not is_sorted(chunk, sort_keys):
                chunk = chunk.sort(sort_keys)
        return _lines(chunk, _text_columns(chunk, columns), nl)

    for chunk, (data, ends) in zip(chunks, _in_order(lines, len(chunks)), strict=True):
        at = 0
        last_rows = itertools.accumulate(n for _, n in chunk)
        for (start, _), end in zip(chunk, ends.gather([r - 1 for r in last_rows]).to_list(), strict=True):
            name, local, utc_offset = file_name(start, kind, options)
            header = render_template("gis/header.j2", type=word, start=local, offset=utc_offset, acd=options.acd)
            yield Output(name, f"{header}{nl}{column_line}{nl}".encode() + data[at:end], out_kind, start)
            at = end


def _in_order(job, count: int) -> Iterator:
    """job(0), job(1), ... job(count - 1), in order. polars releases the GIL, so with more than one
    job the next AHEAD run on other threads while the caller names the files of the current one
    and its caller writes them; a single job (a small input) runs right here."""
    if count == 1:
        yield job(0)
        return
    with ThreadPoolExecutor(max_workers=AHEAD, thread_name_prefix="gisgate-lines") as pool:
        ahead = collections.deque(pool.submit(job, i) for i in range(min(AHEAD, count)))
        for i in range(count):
            result = ahead.popleft().result()
            if i + AHEAD < count:
                ahead.append(pool.submit(job, i + AHEAD))
            yield result


def render(batch: Batch, options: ConvertOptions) -> Iterator[Output]:
    """SERVICE and AGENT files merged by interval, so an interval's pair is produced together."""
    queue, agent = batch.queue_intervals, batch.agent_intervals
    services = render_frame(queue, "service", options, batch.key_ordered(queue), batch.order_of(queue))
    agents = render_frame(agent, "agent", options, batch.key_ordered(agent), batch.order_of(agent))
    yield from heapq.merge(services, agents, key=lambda o: o.interval_start)


def count(batch: Batch, options: ConvertOptions) -> int:
    return sum(f["interval_start"].n_unique() for f in (batch.queue_intervals, batch.agent_intervals) if f is not None)


def missing(batch: Batch) -> str | None:
    if batch.queue_intervals is None and batch.agent_intervals is None:
        return "nothing to convert: the input holds no interval data"
    return None


def warnings(batch: Batch) -> list[str]:
    return []
