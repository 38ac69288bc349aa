"""Helpers shared by the platform adapters (talkdesk, linklive, livevox, cwfm).

State events leave the adapters unsorted and possibly duplicated (overlapping feed pages): the span
builder and the renderers drop exact duplicates and order them, once.

Everything here works on frames of strings as read by `_io` (a `_line` column per row) and
returns polars expressions or Problems, so each adapter stays a short list of column mappings.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import Mapping
from gisgate.errors import ConfigError, InputError, Problem
from gisgate.sources._io import LINE, TOO_LARGE, first_char, json_frame, load_json, problems_from, read_csv

# Built-in state tables (domain-spec §5.6), keyed by `state_key`; `mapping.states` overrides them.
DEFAULT_STATES: dict[str, dict[str, str]] = {
    "talkdesk": {
        "available": "READY",
        "onacall": "TALKING",
        "aftercallwork": "WORK_READY",
        "away": "NOT_READY",
        "offline": "LOGOUT",
        "break": "NOT_READY",
        "lunch": "NOT_READY",
        "meeting": "NOT_READY",
        "training": "NOT_READY",
    },
    "livevox": {
        "ready": "READY",
        "notready": "NOT_READY",
        "incall": "TALKING",
        "talk": "TALKING",
        "dialing": "TALKING",
        "preview": "TALKING",
        "previewdial": "TALKING",
        "manualdial": "TALKING",
        "transferring": "TALKING",
        "hold": "HOLD",
        "wrapup": "WORK_READY",
        "logon": "NOT_READY",
        "logoff": "LOGOUT",
        "reserved": "RESERVED",
        "registering": "NOT_READY",
    },
    # The inverse of the GIS → CommunityWFM reverse table, plus the usual spellings of wrap-up.
    "cwfm": {
        "loggedout": "LOGOUT",
        "logout": "LOGOUT",
        "notready": "NOT_READY",
        "ready": "READY",
        "oncall": "TALKING",
        "wrapup": "WORK_READY",
        "aftercallwork": "WORK_READY",
        "hold": "HOLD",
    },
}
NULLS = ["", "None", "none", "null", "NULL", "N/A", "-"]


def state_key(expr: pl.Expr) -> pl.Expr:
    """Case-insensitive match key: lower case without spaces, `_` and `-` (§5.6)."""
    return expr.str.to_lowercase().str.replace_all(r"[\s_\-]", "")


def state_table(platform: str, mapping: Mapping) -> dict[str, str]:
    table = dict(DEFAULT_STATES.get(platform, {}))
    for raw, state in mapping.states.items():
        if state not in model.STATES:
            raise ConfigError(f"mapping.states.{raw}: {state!r} is not one of {', '.join(model.STATES)}")
        table[pl.select(state_key(pl.lit(raw))).item()] = state
    return table


def map_states(frame: pl.DataFrame, raw: str, table: dict[str, str], what: str) -> tuple[pl.DataFrame, list[str]]:
    """Add `state` from column `raw` through `table`; unknown values become NOT_READY and are counted.

    The few distinct raw values are matched once, then mapped onto the rows."""
    values = frame.select(pl.col(raw).unique().drop_nulls())[raw].cast(pl.String)  # (text or categorical)
    keys = pl.select(state_key(pl.lit(values)))[:, 0]
    matched = {v: table.get(k) for v, k in zip(values.to_list(), keys.to_list(), strict=True)}
    unknown = sorted(v for v, s in matched.items() if s is None)
    dtype = pl.Categorical if isinstance(frame.schema[raw], pl.Categorical) else pl.String  # (a compact frame stays so)
    frame = frame.with_columns(
        pl.col(raw)
        .replace_strict({v: s or "NOT_READY" for v, s in matched.items()}, default=None, return_dtype=dtype)
        .alias("state")
    )
    warnings = []
    if unknown:
        counts = frame.filter(pl.col(raw).is_in(unknown)).group_by(raw).len().sort(raw)
        listed = ", ".join(f"{v!r} ×{n}" for v, n in counts.iter_rows())
        warnings.append(f"{what}: {counts['len'].sum()} event(s) with an unknown state mapped to Not Ready: {listed}")
    return frame.with_columns(pl.col("state").fill_null("NOT_READY")), warnings


def nulls(frame: pl.DataFrame) -> pl.DataFrame:
    """Null markers (`None`, `null`, `N/A`, ...) and blank strings become nulls in every text column;
    surrounding blanks are stripped. One scan finds the columns that need it; only those are
    rewritten (rewriting copies every value). A categorical column is cleaned as its distinct
    values are: the same decisions, taken on a few values."""
    categorical = [c for c, t in frame.schema.items() if isinstance(t, pl.Categorical)]
    uniques = frame.select(pl.col(c).unique().drop_nulls().implode() for c in categorical)  # (one pass, in parallel)
    for c in categorical:
        distinct = uniques[c].explode()
        values = distinct.cast(pl.String)
        cleaned = nulls(pl.DataFrame({c: values}))[c]
        if cleaned.equals(values):
            continue
        if (cleaned.eq_missing(values) | cleaned.is_null()).all():  # (null markers only: by code, 15× faster)
            gone = distinct.filter(cleaned.is_null()).to_physical()
            frame = frame.with_columns(
                pl.when(pl.col(c).to_physical().is_in(gone.implode())).then(None).otherwise(pl.col(c)).alias(c)
            )
        else:
            frame = frame.with_columns(pl.col(c).replace_strict(values, cleaned, default=None,
                                                                return_dtype=pl.Categorical))
    text = [c for c, t in frame.schema.items() if t == pl.String]
    if not text:
        return frame
    found = frame.select(
        *[pl.col(c).is_in(NULLS).any().alias(f"n{i}") for i, c in enumerate(text)],
        *[
            pl.any_horizontal([pl.col(c).str.starts_with(b) | pl.col(c).str.ends_with(b) for b in (" ", "\t")])
            .any()
            .alias(f"p{i}")
            for i, c in enumerate(text)
        ],
    ).row(0, named=True)
    exprs = []
    for i, c in enumerate(text):
        v = pl.col(c).str.strip_chars() if found[f"p{i}"] else pl.col(c)
        if found[f"p{i}"] or found[f"n{i}"]:
            exprs.append(pl.when(v.is_in(NULLS)).then(None).otherwise(v).alias(c))
    return frame.with_columns(exprs) if exprs else frame


def map_ids(expr: pl.Expr, table: dict[str, str]) -> pl.Expr:
    """IDs through a mapping table; unmapped IDs pass through unchanged."""
    return expr.replace(table) if table else expr


def bad_ids(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """(_line, column, reason) for IDs that cannot travel in a GIS file: comma, quote or whitespace."""
    parts = []
    for c in columns:
        if c not in frame.columns:
            continue
        ids = frame.select(pl.col(c).unique().drop_nulls())[c].cast(pl.String)  # (text or categorical)
        bad = ids.filter(ids.str.contains(r"[,\"'\s]"))  # checked once per distinct ID
        if bad.len():
            parts.append(
                frame.filter(pl.col(c).is_in(bad.implode())).select(
                    LINE,
                    pl.lit(c).alias("column"),
                    (pl.lit("ID contains a comma, quote or space: ") + pl.col(c).cast(pl.String)).alias("reason"),
                )
            )
    return (
        pl.concat(parts) if parts else pl.DataFrame(schema={LINE: pl.Int64, "column": pl.String, "reason": pl.String})
    )


# Epoch numbers from 10**11 on are milliseconds; past 10**14 (milliseconds of the year 5138) a number
# is no time at all (and would overflow, or be a date polars cannot show).
EPOCH_MS_FROM, EPOCH_MAX = 1e11, 1e14


def epoch_instant(num: pl.Expr) -> pl.Expr:
    """Epoch seconds or milliseconds (by magnitude) → UTC instant; null when out of range."""
    us = pl.when(num > EPOCH_MS_FROM).then(num * 1000).otherwise(num * 1_000_000)
    return pl.from_epoch(pl.when(num.abs() < EPOCH_MAX).then(us.round(0)).cast(pl.Int64), time_unit="us"
                         ).dt.replace_time_zone("UTC")


def utc_time(expr: pl.Expr, naive_tz: str) -> pl.Expr:
    """Text → UTC instant. Accepts epoch seconds or milliseconds (> 10¹¹ ⇒ ms), ISO-8601 with an offset
    or `Z`, naive `YYYY-MM-DD[ T]HH:MM[:SS[.fff]]` (in `naive_tz`) and `M/D/YYYY H:mm[:ss]` (naive)."""
    text = expr.str.strip_chars()
    num = text.cast(pl.Float64, strict=False)
    dates = [e for name, e in time_shapes(text, naive_tz).items() if name != "epoch"]
    return pl.when(num.is_not_null()).then(epoch_instant(num)).otherwise(pl.coalesce(dates)).cast(model.UTC_TIME)


def time_shapes(text: pl.Expr, naive_tz: str) -> dict[str, pl.Expr]:
    """Each spelling `utc_time` accepts, parsed on its own into a UTC instant (null where it does not
    apply), in the order `utc_time` tries them. No text is two of them: the formats are parsed in
    full (polars refuses what is left over), and a number is no date."""
    spaced = text.str.replace("T", " ")

    def naive(e: pl.Expr, pattern: str) -> pl.Expr:
        return (e.str.to_datetime(pattern, strict=False, time_unit="us")
                .dt.replace_time_zone(naive_tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"))

    return {
        "epoch": epoch_instant(text.cast(pl.Float64, strict=False)),
        "offset": text.str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False,
                                                                     time_zone="UTC"),
        "seconds": naive(spaced, "%Y-%m-%d %H:%M:%S%.f"),
        "minutes": naive(spaced, "%Y-%m-%d %H:%M"),
        "mdy seconds": naive(text, "%m/%d/%Y %H:%M:%S"),
        "mdy minutes": naive(text, "%m/%d/%Y %H:%M"),
    }


def with_times(frame: pl.DataFrame, columns: dict[str, pl.Expr], naive_tz: str) -> pl.DataFrame:
    """Add each `columns` entry (name → text expression) parsed by `utc_time`, cheaply.

    Parsing every value against every accepted format is slow on millions of rows, so a fast path
    takes the two shapes exports mostly use (epoch numbers; `YYYY-MM-DD HH:MM:SS[.fff]`, whose
    date-and-minute prefix repeats and is parsed once per distinct value), and only the values it
    cannot read go through the full `utc_time`.
    """
    for name, text in columns.items():
        frame = frame.with_columns(_fast_time(text, naive_tz).alias(name))
        todo = frame.select((pl.col(name).is_null() & text.is_not_null()).arg_true().alias("i"))["i"]
        if todo.len():
            slow = frame[todo].select(utc_time(text, naive_tz))[:, 0]
            frame = frame.with_columns(frame[name].scatter(todo, slow))
    return frame


def scanned_time(lf: pl.LazyFrame, name: str, column: str, naive_tz: str, sample: str | None = None) -> pl.LazyFrame:
    """For a streamed query over a scanned CSV (`_io.scan_csv`): text column `column` stripped and
    parsed into `name` by the fast path of `with_times`, and, when the file's first value (`sample`)
    is in another spelling (`M/D/YYYY H:mm:ss`, ISO-8601 with an offset...), by that spelling of
    `utc_time` too: an export writes its times one way, and each value the scan leaves is kept as a
    text. The stripped text is kept (as a categorical, null elsewhere) only where `scanned_times`
    still needs it: not read here (null markers among them), or read as a time before 1970 (which
    `check_parsed` refuses). `_w` flags values with white space around them, for `scanned_times`.
    """
    raw = pl.col(column)
    at = pl.col(name)
    parse = _fast_time(pl.col("_text"), naive_tz)
    shape = _shape_of(sample, naive_tz)
    if shape is not None:  # (what the fast path reads it reads first, as `with_times` does)
        parse = pl.coalesce(parse, time_shapes(pl.col("_text"), naive_tz)[shape])
    # one step per column made: an expression used twice in one step is evaluated twice
    return (
        lf.with_columns(raw.str.strip_chars().alias("_text"))
        .with_columns(parse.cast(model.UTC_TIME).alias(name),
                      (raw.str.len_bytes() != pl.col("_text").str.len_bytes()).alias("_w"))
        .with_columns(pl.when(at.is_null() | (at.dt.epoch("us") < 0)).then(pl.col("_text")).cast(pl.Categorical)
                      .alias(column))
        .drop("_text")
    )


def _shape_of(sample: str | None, naive_tz: str) -> str | None:
    """The `time_shapes` spelling of `sample` when the fast path of `with_times` cannot read it."""
    if sample is None or not sample.strip():
        return None
    one = pl.DataFrame({"t": [sample.strip()]})
    if one.select(_fast_time(pl.col("t"), naive_tz).is_not_null()).item():
        return None
    shapes = time_shapes(pl.col("t"), naive_tz)
    read = one.select(e.is_not_null().alias(k) for k, e in shapes.items()).row(0, named=True)
    return next((k for k, ok in read.items() if ok), None)


def scanned_times(frame: pl.DataFrame, name: str, column: str, naive_tz: str, lf: pl.LazyFrame) -> pl.DataFrame | None:
    """Finish what `scanned_time` began on `lf`: null markers among the kept texts become nulls, and
    the values the fast path could not read go through `utc_time`, as in `with_times`. None (read
    the file as text instead) when a value has white space around it but none has blanks or tabs
    (a second scan says, only when some value has white space around it): `nulls` would keep that
    space, `scanned_time` stripped it.
    """
    raw = pl.col(column)
    blanks = (raw.str.len_bytes() != raw.str.strip_chars(" \t").str.len_bytes()).any()
    if frame["_w"].any() and not lf.select(blanks).collect(engine="streaming").item():
        return None
    frame = frame.drop("_w")
    frame = frame.with_columns(nulls(frame.select(column)))  # (a few distinct texts, already stripped)
    todo = frame.select((pl.col(name).is_null() & pl.col(column).is_not_null()).arg_true().alias("i"))["i"]
    if todo.len():
        slow = frame[todo].select(utc_time(pl.col(column).cast(pl.String), naive_tz))[:, 0]
        frame = frame.with_columns(frame[name].scatter(todo, slow))
    return frame


def _fast_time(text: pl.Expr, naive_tz: str) -> pl.Expr:
    num = text.cast(pl.Float64, strict=False)
    epoch = epoch_instant(num)
    minute = text.str.slice(0, 16).str.to_datetime("%Y-%m-%d %H:%M", strict=False, cache=True, time_unit="us")
    secs = text.str.slice(17).cast(pl.Float64, strict=False)
    ok = (text.str.slice(16, 1) == ":") & secs.is_between(0, 60, closed="left")
    naive = pl.when(ok).then(minute + pl.duration(microseconds=(secs * 1_000_000).round(0).cast(pl.Int64)))
    if naive_tz != "UTC":
        naive = naive.dt.replace_time_zone(naive_tz, ambiguous="earliest", non_existent="null")
    naive = naive.dt.convert_time_zone("UTC") if naive_tz != "UTC" else naive.dt.replace_time_zone("UTC")
    return pl.when(num.is_not_null()).then(epoch).otherwise(naive).cast(model.UTC_TIME)


def per_value(frame: pl.DataFrame, column: str, fn, dtype: pl.DataType) -> pl.Expr:
    """`fn(pl.col(column))` computed on the column's distinct values only and mapped back onto the
    rows: labels, ring groups and Yes/No flags repeat millions of times but have few values."""
    values = frame.get_column(column).unique().drop_nulls()
    mapped = pl.DataFrame({column: values}).select(fn(pl.col(column)).cast(dtype))[:, 0]
    null_value = pl.DataFrame({column: [None]}, schema={column: pl.String}).select(fn(pl.col(column)).cast(dtype))[0, 0]
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit(null_value, dtype))
        .otherwise(pl.col(column).replace_strict(values, mapped, default=None, return_dtype=dtype))
    )


def with_seconds(frame: pl.DataFrame, columns: dict[str, tuple[str, float]]) -> pl.DataFrame:
    """Add each `name: (source column, scale)` as float seconds (`seconds`): plain numbers are cast
    at once; only values that are not numbers go through the text patterns."""
    for name, (src, scale) in columns.items():
        frame = frame.with_columns((pl.col(src).str.strip_chars().cast(pl.Float64, strict=False) * scale).alias(name))
        todo = frame.select((pl.col(name).is_null() & pl.col(src).is_not_null()).arg_true().alias("i"))["i"]
        if todo.len():
            frame = frame.with_columns(frame[name].scatter(todo, frame[todo].select(seconds(pl.col(src), scale))[:, 0]))
    return frame


def seconds(expr: pl.Expr, scale: float = 1.0) -> pl.Expr:
    """A duration as float seconds: a number (× `scale`, e.g. 0.001 for ms, 86400 for day fractions),
    `h:mm:ss`, or `0d 0h 0m 42s`."""
    text = expr.str.strip_chars()
    num = text.cast(pl.Float64, strict=False) * scale
    parts = text.str.extract_groups(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?$")
    dhms = (
        parts.struct.field("1").cast(pl.Float64).fill_null(0) * 86400
        + parts.struct.field("2").cast(pl.Float64).fill_null(0) * 3600
        + parts.struct.field("3").cast(pl.Float64).fill_null(0) * 60
        + parts.struct.field("4").cast(pl.Float64).fill_null(0)
    )
    clock = text.str.extract_groups(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")
    hms = (
        clock.struct.field("1").cast(pl.Float64) * 3600
        + clock.struct.field("2").cast(pl.Float64) * 60
        + clock.struct.field("3").cast(pl.Float64)
    )
    has_unit = text.str.contains(r"^\s*\d") & text.str.contains(r"[dhms]$")
    return pl.when(num.is_not_null()).then(num).when(hms.is_not_null()).then(hms).when(has_unit).then(dhms)


def yes(expr: pl.Expr) -> pl.Expr:
    """`Yes`/`true`/`1` → True, anything else (No, None, empty) → False."""
    return expr.str.strip_chars().str.to_lowercase().is_in(["yes", "true", "1", "y"]).fill_null(False)


def check_parsed(frame: pl.DataFrame, pairs: dict[str, str], what: str) -> pl.DataFrame:
    """(_line, column, reason) where source column `src` had a value but its parsed twin `dst` is null
    or negative, or (a number) not below `TOO_LARGE`. `pairs` maps parsed column → source column."""
    parts = []
    for dst, src in pairs.items():
        value = pl.col(dst).cast(pl.Float64, strict=False)
        bad = pl.col(dst).is_null() | (value < 0)
        reason = pl.lit(f"not {what}: ") + pl.col(src).cast(pl.String)
        if frame.schema[dst].is_numeric():  # (`< TOO_LARGE` is false for inf and NaN)
            bad = bad | ~(value < TOO_LARGE)
            reason = pl.when(value >= TOO_LARGE).then(
                pl.lit(f"too large for {what} (1e12 or more, or not finite): ") + pl.col(src).cast(pl.String)
            ).otherwise(reason)
        parts.append(
            frame.filter(pl.col(src).is_not_null() & bad).select(
                LINE,
                pl.lit(src).alias("column"),
                reason.alias("reason"),
            )
        )
    return (
        pl.concat(parts) if parts else pl.DataFrame(schema={LINE: pl.Int64, "column": pl.String, "reason": pl.String})
    )


def required(frame: pl.DataFrame, columns: list[str], empty: dict[str, pl.Expr] | None = None) -> pl.DataFrame:
    """(_line, column, reason) for empty required values. `empty` tells, for a column the frame no
    longer holds as read, where its value was empty."""
    empty = empty or {}
    parts = [
        frame.filter(empty.get(c, pl.col(c).is_null())).select(
            LINE, pl.lit(c).alias("column"), pl.lit("value is empty").alias("reason")
        )
        for c in columns
    ]
    return (
        pl.concat(parts) if parts else pl.DataFrame(schema={LINE: pl.Int64, "column": pl.String, "reason": pl.String})
    )


def raise_problems(frames: list[pl.DataFrame], file: str) -> None:
    problems = problems_from(pl.concat(frames) if frames else pl.DataFrame(), file) if frames else []
    if problems:
        raise InputError(problems)


def missing_columns(frame: pl.DataFrame, columns: list[str], file: str, what: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InputError([Problem(file, 1, c, f"missing: a {what} needs it") for c in absent])


def queue_rows(f: pl.DataFrame) -> pl.DataFrame:
    """QUEUE_INTERVALS rows from interval totals that give offered, abandoned and talk seconds: handled
    (and answered) = offered − abandoned; hold and service level when the export has them, else 0."""
    handled = (pl.col("offered") - pl.col("abandoned")).clip(0.0)

    def given(name: str) -> pl.Expr:
        return pl.col(name).fill_null(0.0) if name in f.columns else pl.lit(0.0)

    return f.select(
        "interval_start", "service_id", "offered",
        handled.alias("handled"), handled.alias("answered"),
        "abandoned", "talk_s",
        given("hold_s").alias("hold_s"),
        pl.lit(0.0).alias("acw_s"), pl.lit(0.0).alias("answer_delay_s"),
        given("service_level_pct").clip(0.0, 100.0).alias("service_level_pct"),
    )


def classified(paths: list[Path], kind, what: str, warnings: list[str]):
    """Every non-empty record table of every file, as (kind, frame, file, wrapper scalars).

    `kind(columns)` names a table's kind, or None: a table of no known kind rejects its file,
    saying it is not `what`. Reading warnings are appended to `warnings`.
    """
    for path in paths:
        frames, scalars, w = tables(path)
        warnings += w
        for frame in frames.values():
            if frame.height == 0:
                continue
            k = kind(set(frame.columns))
            if k is None:
                raise InputError(f"not {what} (fields {sorted(frame.columns)[:8]})", str(path))
            yield k, frame, str(path), scalars


def tables(path: Path) -> tuple[dict[str, pl.DataFrame], dict, list[str]]:
    """A file's record lists as string frames: CSV → {"": frame}; JSON → one frame per list of objects
    (keyed by its wrapper key, "" for a top-level array), plus the wrapper's scalar fields."""
    if first_char(path) not in ("[", "{"):
        frame, warnings = read_csv(path)
        return {"": nulls(frame)}, {}, warnings
    data = load_json(path)
    if isinstance(data, list):
        return {"": nulls(json_frame(data))}, {}, []
    if not isinstance(data, dict):
        raise InputError("expected a JSON object or array", str(path))
    lists = {k: v for k, v in data.items() if isinstance(v, list) and all(isinstance(r, dict) for r in v)}
    scalars = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
    if not lists:
        return {"": nulls(json_frame([data]))}, {}, []
    return {k: nulls(json_frame(v)) for k, v in lists.items()}, scalars, []


def empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def concat(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame | None:
    frames = [f for f in frames if f is not None]
    return pl.concat(frames, how="diagonal_relaxed").select(list(schema)).cast(schema) if frames else None
