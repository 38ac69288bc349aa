"""Produced GIS files read back: `…_ServiceHistorical.SERVICE` → QUEUE_INTERVALS, `…_AgentProductivity.AGENT`
→ AGENT_INTERVALS (domain §1.3–1.10), so that `gisgate report` can look at what was written.

The interval's UTC start comes from the file name (local stamp minus the offset it carries), which
is unambiguous also in the repeated fall-back hour. The header line is skipped; the column line
names the GIS columns. Rows that share a key across files with different values are rejected.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.model import AGENT_COLUMNS, QUEUE_COLUMNS, UTC_TIME, Batch, check, gis_columns
from gisgate.produced import parse_gis_name
from gisgate.sources import _checks as chk
from gisgate.sources._io import LINE, Head, numbers

LAYOUTS = {"agent": ("AGENT_INTERVALS", AGENT_COLUMNS), "service": ("QUEUE_INTERVALS", QUEUE_COLUMNS)}


def detect(head: Head) -> bool:
    return parse_gis_name(head.path.name) is not None


def read(paths: list[Path], options: ConvertOptions) -> Batch:
    """Every GIS file as canonical rows; one InputError listing every problem."""
    files = [str(p) for p in paths]
    parts: dict[str, list[pl.DataFrame]] = {"QUEUE_INTERVALS": [], "AGENT_INTERVALS": []}
    problems: list[Problem] = []
    wrong_offsets = 0
    for index, path in enumerate(paths):
        try:
            layout, frame, start, offset = _read_one(path, index)
        except InputError as e:
            problems += e.problems
            continue
        parts[layout].append(frame)
        wrong_offsets += start.astimezone(ZoneInfo(options.tz)).utcoffset() != offset
    if problems:
        raise InputError(problems)
    batch = Batch()
    if wrong_offsets:
        batch.warnings.append(f"{wrong_offsets} GIS file(s) carry an offset that is not {options.tz}'s at that "
                              "instant; pass the ACD's zone with --tz")
    bad = []
    for layout, frames in parts.items():
        if not frames:
            continue
        columns = AGENT_COLUMNS if layout == "AGENT_INTERVALS" else QUEUE_COLUMNS
        frame = pl.concat(frames, how="diagonal_relaxed")
        keys = [c.name for c in columns if c.kind in ("id", "time")]
        values = [c.name for c in columns if c.name in frame.columns and c.name not in keys]
        frame, clash, dropped = chk.duplicates(frame, keys, values, {c.name: c.gis for c in columns})
        bad.append(clash)
        if dropped:
            batch.warnings.append(f"dropped {dropped} identical duplicate row(s) found in more than one GIS file")
        frame = check(frame.drop(chk.FILE, LINE), layout, "gis")
        if layout == "AGENT_INTERVALS":
            batch.agent_intervals = frame
        else:
            batch.queue_intervals = frame
    found = pl.concat(bad)
    if not found.is_empty():
        raise InputError(chk.problems(found, files))
    return batch


def _read_one(path: Path, index: int) -> tuple[str, pl.DataFrame, datetime, timedelta]:
    file = str(path)
    name = parse_gis_name(path.name)
    start = name.start_utc() if name is not None else None
    if start is None:
        raise InputError("not a GIS file name (<yyyyMMddHHmm><N|P><HHMM>_<ACD>_...)", file)
    offset = name.offset
    layout, columns = LAYOUTS[name.kind]
    by_gis = gis_columns(columns)
    try:
        frame = pl.read_csv(path, skip_rows=1, infer_schema=False, row_index_name=LINE, row_index_offset=3,
                            raise_if_empty=False)
    except (pl.exceptions.ComputeError, OSError) as e:
        raise InputError(f"not a readable GIS file: {e}", file) from None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    problems = [Problem(file, 2, c, "unknown column") for c in frame.columns
                if c not in by_gis and c not in (LINE, "periodStart")]
    problems += [Problem(file, 2, c.gis, "required column is missing") for c in columns
                 if c.required and c.gis and c.gis not in frame.columns]
    if problems:
        raise InputError(problems)
    frame = frame.drop("periodStart", strict=False).rename({g: c.name for g, c in by_gis.items() if g in frame.columns})
    metrics = [c.name for c in columns if c.kind not in ("id", "time") and c.name in frame.columns]
    frame, bad = numbers(frame, metrics, file)
    if bad:
        raise InputError(bad)
    ids = [c.name for c in columns if c.kind == "id"]
    frame = frame.with_columns(pl.col(ids).str.strip_chars(), pl.lit(start, UTC_TIME).alias("interval_start"),
                               pl.lit(index, pl.Int32).alias(chk.FILE), pl.col(LINE).cast(pl.Int64))
    return layout, frame, start, offset
