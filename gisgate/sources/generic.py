"""Generic interval input: GIS column names plus `periodStart`, as CSV or JSON.

A file with an `acdAgentId` column is agent data (→ AgentProductivity.AGENT), otherwise service
data (→ ServiceHistorical.SERVICE). `periodStart` is the interval start as ISO-8601 with an offset
or `Z`, epoch seconds, or epoch milliseconds. IDs stay strings (`00123` stays `00123`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.model import (
    AGENT_COLUMNS,
    QUEUE_COLUMNS,
    UNPRORATED,
    UTC_TIME,
    Batch,
    Column,
    check,
    gis_columns,
    in_order,
    repeats,
    with_previous,
)
from gisgate.sources import _checks as chk
from gisgate.sources._io import LINE, TOO_LARGE, Head, head, json_frame, json_records, numbers, read_csv
from gisgate.transform import clock

PERIOD = "periodStart"
AGENT_GIS = gis_columns(AGENT_COLUMNS)
QUEUE_GIS = gis_columns(QUEUE_COLUMNS)


def detect(head: Head) -> bool:
    return PERIOD in head.keys and ("acdServiceId" in head.keys)


def _layout(keys) -> tuple[str, list[Column], dict[str, Column]]:
    if "acdAgentId" in keys:
        return "AGENT_INTERVALS", AGENT_COLUMNS, AGENT_GIS
    return "QUEUE_INTERVALS", QUEUE_COLUMNS, QUEUE_GIS


def read(paths: list[Path], options: ConvertOptions) -> Batch:
    """Read, parse and check every file; raise one InputError listing every problem found.

    Every row is checked against every rule in one pass: a file that cannot be read (no rows, a
    missing or unknown column) does not stop the others' rows from being checked, and a bad row
    does not stop the other rules; only the rules that compare rows (duplicate keys, an agent's
    totals) look at the rows that passed the others, so that a bad value is not reported twice.
    """
    files = [str(p) for p in paths]
    frames: dict[str, list[pl.DataFrame]] = {"AGENT_INTERVALS": [], "QUEUE_INTERVALS": []}
    bad_values: dict[str, list[pl.DataFrame]] = {"AGENT_INTERVALS": [], "QUEUE_INTERVALS": []}
    found: list[pl.DataFrame] = []
    file_problems: list[Problem] = []
    warnings: list[str] = []
    texts = pl.Categories.random()  # periodStart as read: a code per distinct text (one set for all files)
    for index, path in enumerate(paths):
        try:
            frame, layout, w, bad = _read_one(path, index, texts)
        except InputError as e:
            file_problems += e.problems
            continue
        warnings += w
        frames[layout].append(frame)
        del frame  # (the list holds it, and `_take` empties the list: this name must not keep it alive)
        bad_values[layout].append(bad)

    batch = Batch(warnings=warnings)
    zone = _offset_warning([f for parts in frames.values() for f in parts], options.tz)
    warnings += [zone] if zone else []
    for layout, parts in frames.items():
        if not parts:
            continue
        # (`_take` leaves no reference here: the check can release the rows as it replaces them)
        frame, bad, w, order = _check_rows(_take(parts), layout, options, pl.concat(bad_values[layout]))
        found.append(bad)
        warnings += w
        if order is None:
            batch.in_key_order.append(frame)  # `chk.duplicates` left it sorted by key
        else:
            batch.key_order.append((frame, order))
        if layout == "AGENT_INTERVALS":
            batch.agent_intervals = frame
        else:
            batch.queue_intervals = frame
    all_bad = pl.concat(found) if found else pl.DataFrame(schema=chk.PROBLEM_SCHEMA)
    if file_problems or not all_bad.is_empty():
        order = {f: i for i, f in enumerate(files)}
        raise InputError(sorted(file_problems + chk.problems(all_bad, files),
                                key=lambda p: (order.get(p.file, -1), p.line, p.column)))
    return batch


def _take(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames of `parts` as one, emptying the list (so that it keeps none of their columns alive)."""
    frame = pl.concat(parts, how="diagonal_relaxed")
    parts.clear()
    return frame


def _read_one(path: Path, index: int, texts: pl.Categories) -> tuple[pl.DataFrame, str, list[str], pl.DataFrame]:
    """One file → frame with canonical column names (metrics as numbers, null where not one),
    `_file`, `_line`; and the problems of its metric values (`chk.PROBLEM_SCHEMA`).

    A CSV's `periodStart` is read as codes of `texts` (a few hundred distinct texts among millions
    of rows: 4 bytes a row instead of 36), made instants by `_iso_starts`. (IDs read so and made
    strings again cost 20 % more CPU time for the read than they saved memory.)"""
    file = str(path)
    peek = head(path)
    if path.suffix.lower() in (".json", ".ndjson", ".jsonl") or peek.kind == "json":
        frame, warnings = json_frame(json_records(path)), []
    else:
        # The header types the metric columns: typed parsing is the fast path.
        layout_cols = _layout(peek.keys)[2]
        schema = {g: pl.Float64 for g, c in layout_cols.items() if c.kind != "id"}
        schema[PERIOD] = pl.Categorical(texts)
        frame, warnings = read_csv(path, schema)
    if frame.is_empty():
        raise InputError("no data rows", file)
    layout, columns, by_gis = _layout(frame.columns)
    problems = [Problem(file, 1, name, "unknown column (not a GIS column name)")
                for name in frame.columns if name not in by_gis and name not in (PERIOD, LINE)]
    problems += [Problem(file, 1, c.gis, "required column is missing")
                 for c in columns if c.required and c.gis and c.gis not in frame.columns]
    if PERIOD not in frame.columns:
        problems.append(Problem(file, 1, PERIOD, "required column is missing"))
    if problems:
        raise InputError(problems)
    frame = frame.rename({g: by_gis[g].name for g in frame.columns if g in by_gis})
    frame = frame.with_columns(pl.lit(index, pl.Int32).alias(chk.FILE))
    metrics = [c.name for c in columns if c.kind != "id" and c.kind != "time" and c.name in frame.columns]
    frame, bad = numbers(frame, metrics, file)
    # Name the GIS column, not the canonical one, in messages.
    by_name = {c.name: c.gis for c in columns}
    ids = [c.name for c in columns if c.kind == "id"]
    return (frame.with_columns(pl.col(ids).cast(pl.String)), layout, warnings,
            chk.problem_frame([Problem(p.file, p.line, by_name.get(p.column, p.column), p.reason) for p in bad], index))


def _offset_warning(frames: list[pl.DataFrame], tz: str) -> str | None:
    """`clock.offset_warning` over every distinct `periodStart` (a few hundred among millions of rows)."""
    if not frames:
        return None
    texts = set().union(*(
        (_texts(f[PERIOD]) if isinstance(f.schema[PERIOD], pl.Categorical) else f[PERIOD].unique()).to_list()
        for f in frames
    ))
    return clock.offset_warning(texts, tz, PERIOD)


def parse_instant(col: pl.Expr) -> pl.Expr:
    """ISO-8601 with offset or Z, epoch seconds or epoch milliseconds (by magnitude) → UTC."""
    s = col.cast(pl.String).str.strip_chars()
    iso = s.str.replace(" ", "T").str.replace(r"Z$", "+00:00")
    num = s.cast(pl.Float64, strict=False)
    # from 1e11 epoch milliseconds; past 1e14 (the year 5138 in ms) no time at all: "not a timestamp"
    epoch_us = (pl.when(num >= 1e14).then(None).when(num > 1e11).then(num * 1_000).otherwise(num * 1_000_000)
                .round(0).cast(pl.Int64))
    return (
        pl.when(s.str.contains(r"^\d+(\.\d+)?$"))
        .then(epoch_us.cast(UTC_TIME))
        .otherwise(pl.coalesce(
            iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False),
            iso.str.to_datetime("%Y-%m-%dT%H:%M%z", time_zone="UTC", strict=False),
        ))
    )


def _check_rows(frame: pl.DataFrame, layout: str, options: ConvertOptions, bad_values: pl.DataFrame) -> tuple[
    pl.DataFrame, pl.DataFrame, list[str], pl.Series | None
]:
    """Every rule on every row: `bad_values` (the metric problems found while reading), interval
    starts, IDs and service levels together; then keys and agent totals among the rows left.

    Returns (frame, problems, warnings, order): the frame is in key order, or `order` says which
    rows, in turn, are."""
    columns = AGENT_COLUMNS if layout == "AGENT_INTERVALS" else QUEUE_COLUMNS
    by_name = {c.name: c for c in columns}
    warnings = []
    starts = _iso_starts(frame, options.tz)
    if starts is not None:
        frame, bad_starts = frame.with_columns(starts).drop(PERIOD), pl.DataFrame(schema=chk.PROBLEM_SCHEMA)
    else:
        frame, bad_starts = _parse_periods(frame.with_columns(pl.col(PERIOD).cast(pl.String)), options)
    frame, checks = chk.clean_ids(frame, [(c.name, c.gis) for c in columns if c.kind == "id"])
    if "service_level_pct" in frame.columns:
        level = pl.col("service_level_pct")  # (values that are not numbers at all are in `bad_values`)
        checks.append(((level > 100) & (level < TOO_LARGE), "serviceLevelPercent", pl.lit("greater than 100")))
    bad = [bad_values, bad_starts, chk.collect(checks, frame)]
    if any(not b.is_empty() for b in bad):
        # Rules comparing rows look at good rows only: a bad value is reported once, as itself.
        frame = frame.join(pl.concat(bad).select(chk.FILE, LINE).unique(), on=[chk.FILE, LINE], how="anti")

    keys = [c.name for c in columns if c.kind in ("id", "time")]
    values = [c.name for c in columns if c.name in frame.columns and c.name not in keys]
    # One parallel pass over neighbouring rows answers the common case: in order, no repeated key
    # and (agent data) every agent total repeated; anything else is looked at closely below.
    agent = layout == "AGENT_INTERVALS"
    # (lazily: polars then computes the comparisons the three answers share once, over both cores)
    ordered, repeated, differ = with_previous(frame, keys + (UNPRORATED if agent else [])).lazy().select(
        in_order(keys).alias("o"), repeats(keys).alias("r"),
        (chk.agent_totals_differ() if agent else pl.lit(False)).alias("d"),
    ).collect().row(0)
    if ordered:  # (said, so that what follows finds the distinct starts, runs and order by a scan)
        frame = frame.with_columns(pl.col("interval_start").set_sorted())
    order = None if ordered else chk.key_order(frame, keys)
    if order is not None and not order.repeated and not (agent and chk.agent_totals_differ_in(frame, order)):
        # Out of order, but no key repeats and every agent total repeats: the rows stay where they
        # are, and the renderer takes them in `order` a chunk at a time (a sorted copy of millions
        # of rows would double the memory).
        return check(frame.drop(chk.FILE, LINE), layout, "generic"), pl.concat(bad), warnings, order.rows
    frame, dup_bad, dropped = chk.duplicates(frame, keys, values, {c.name: c.gis for c in columns},
                                             facts=(ordered, repeated), consume=True, order=order)
    bad.append(dup_bad)
    warnings += [f"dropped {dropped} identical duplicate row(s)"] if dropped else []
    if agent and (differ or not ordered):
        bad.append(chk.unprorated_consistency(frame, by_name))
    frame = frame.drop(chk.FILE, LINE)
    return check(frame, layout, "generic"), pl.concat(bad), warnings, None


ISO = "%Y-%m-%dT%H:%M:%S%.f%#z"  # 2024-11-03T01:00:00-04:00, ...Z, with or without fractions


def _iso_starts(frame: pl.DataFrame, tz: str) -> pl.Expr | None:
    """`periodStart` as UTC instants when every value is plain ISO-8601 with an offset on a
    15-minute boundary (the common case); None sends the input through `_parse_periods`, which
    handles every accepted spelling and names each bad value. Each distinct text is parsed once,
    and the rows take their instant by the text's code (a few hundred codes: cheap in any row
    order; replacing values keeps the frame's chunks, which a gathered column would make polars
    copy the whole frame to match)."""
    dtype = frame.schema[PERIOD]
    if not isinstance(dtype, pl.Categorical):  # (JSON, or a CSV read as text to name a bad value)
        dtype = pl.Categorical(pl.Categories.random())
        frame = frame.select(pl.col(PERIOD).cast(dtype))
    texts = _texts(frame[PERIOD])  # each distinct text once: its code is its place
    starts = texts.str.to_datetime(ISO, time_zone="UTC", strict=False).alias("interval_start")
    misaligned, _, _ = clock.misaligned(tz, 15, PERIOD)
    if starts.null_count() or starts.to_frame().select(misaligned.any()).item():
        return None
    codes = pl.col(PERIOD).cast(dtype).to_physical()
    return codes.replace_strict(pl.int_range(len(texts), eager=True), starts.to_physical(),
                                return_dtype=pl.Int64).cast(UTC_TIME).alias("interval_start")


def _texts(period: pl.Series) -> pl.Series:
    """Every text of a categorical `periodStart`'s categories, in the order of their codes (the
    texts of all the files read with them: a few hundred, against millions of rows to scan)."""
    return period.dtype.categories.to_series()


def _parse_periods(frame: pl.DataFrame, options: ConvertOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse and check every spelling of `periodStart`; (frame with interval_start, problems).

    A week of data has a few hundred distinct periodStart texts among millions of rows: parse and
    check each distinct text once, then map the result back (no join: it would copy the frame).
    """
    period = pl.col(PERIOD)
    has_offset = period.str.contains(r"(Z|[+-]\d{2}:?\d{2})\s*$") | period.str.contains(r"^\s*\d+(\.\d+)?\s*$")
    distinct = frame.select(period.unique()).with_columns(parse_instant(period).alias("interval_start"))
    start_checks = [
        (period.is_null() | (period.str.strip_chars() == ""), PERIOD, pl.lit("value is empty")),
        (~has_offset & period.is_not_null(), PERIOD,
         pl.lit("no UTC offset in ") + period + pl.lit(": write e.g. 2024-11-03T01:00:00-04:00 or ...Z")),
        (has_offset & pl.col("interval_start").is_null(), PERIOD, pl.lit("not a timestamp: ") + period),
        clock.misaligned(options.tz, 15, PERIOD),
    ]
    distinct = distinct.with_columns(
        pl.coalesce([pl.when(cond.fill_null(False)).then(reason) for cond, _, reason in start_checks])
        .alias("_period_problem")
    )
    bad_periods = distinct.filter(pl.col("_period_problem").is_not_null())
    bad = pl.DataFrame(schema=chk.PROBLEM_SCHEMA)
    if not bad_periods.is_empty():
        rows = frame.filter(period.is_in(bad_periods[PERIOD].drop_nulls().implode()) | period.is_null())
        rows = rows.join(bad_periods, on=PERIOD, how="left", nulls_equal=True)
        bad = chk.collect([(pl.lit(True), PERIOD, pl.col("_period_problem"))], rows)
        distinct = distinct.with_columns(  # the rows of a bad start leave before keys are compared
            pl.when(pl.col("_period_problem").is_null()).then(pl.col("interval_start")).alias("interval_start"))
    frame = frame.with_columns(
        period.replace_strict(distinct[PERIOD], distinct["interval_start"], default=None, return_dtype=UTC_TIME)
        .alias("interval_start")
    ).drop(PERIOD)
    return frame, bad
