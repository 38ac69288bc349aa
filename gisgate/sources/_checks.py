"""Row checks shared by the sources that read interval data (generic, WHIT).

Each check returns a frame of problems (`_file`, `_line`, `column`, `reason`) rather than raising,
so that one pass reports every bad row of every input. Frames carry `_file` (an index into the
list of input names) and `_line` (the physical line of the row in its file).
"""

from __future__ import annotations

import polars as pl

from gisgate.errors import Problem
from gisgate.model import PREV, UNPRORATED, Column, in_order, repeats, same_as_previous_any, with_previous
from gisgate.sources._io import LINE

FILE = "_file"
PROBLEM_SCHEMA = {FILE: pl.Int32, LINE: pl.Int64, "column": pl.String, "reason": pl.String}
BAD_ID = r"[,\"\s]"


def problems(frame: pl.DataFrame, files: list[str]) -> list[Problem]:
    """A problems frame as sorted Problems with real file names."""
    if frame.is_empty():
        return []
    rows = frame.select(FILE, LINE, "column", "reason").sort(FILE, LINE, "column").iter_rows()
    return [Problem(files[f], line, column, reason) for f, line, column, reason in rows]


def problem_frame(found: list[Problem], index: int) -> pl.DataFrame:
    """Problems of input number `index` as a problems frame (the inverse of `problems`)."""
    return pl.DataFrame({FILE: [index] * len(found), LINE: [p.line for p in found],
                         "column": [p.column for p in found], "reason": [p.reason for p in found]},
                        schema=PROBLEM_SCHEMA)


def collect(checks: list[tuple[pl.Expr, str, pl.Expr]], frame: pl.DataFrame) -> pl.DataFrame:
    """Evaluate (condition, column, reason) checks on `frame`; the rows where a condition holds."""
    if not checks or frame.is_empty():
        return pl.DataFrame(schema=PROBLEM_SCHEMA)
    # One cheap vectorised pass decides which rows need their problems spelled out.
    frame = frame.filter(pl.any_horizontal([cond.fill_null(False) for cond, _, _ in checks]))
    if frame.is_empty():
        return pl.DataFrame(schema=PROBLEM_SCHEMA)
    parts = [
        pl.struct(
            pl.col(FILE), pl.col(LINE), pl.lit(column).alias("column"),
            pl.when(cond).then(reason).otherwise(None).alias("reason"),
        )
        for cond, column, reason in checks
    ]
    return (
        frame.select(pl.concat_list(parts).alias("p")).explode("p").unnest("p")
        .filter(pl.col("reason").is_not_null())
        .cast(PROBLEM_SCHEMA)
    )


def id_checks(columns: list[tuple[str, str]]) -> list[tuple[pl.Expr, str, pl.Expr]]:
    """IDs must be present and travel unquoted: no comma, quote or whitespace (domain §1.7)."""
    out = []
    for name, shown in columns:
        c = pl.col(name)
        out.append((c.is_null() | (c == ""), shown, pl.lit("ID is empty")))
        out.append((c.str.contains(BAD_ID), shown,
                    pl.lit("ID contains a comma, quote or whitespace (cannot travel in a GIS file; map it)")))
    return out


def clean_ids(frame: pl.DataFrame, columns: list[tuple[str, str]]) -> tuple[
    pl.DataFrame, list[tuple[pl.Expr, str, pl.Expr]]
]:
    """Strip blanks around IDs, then `id_checks`. The checks' regex only runs over all rows of a
    column that has a comma, quote or blank somewhere; a clean column costs one `unique`.
    """
    names = [n for n, _ in columns]
    # Millions of rows hold a few thousand distinct IDs: run the regex on those.
    # (one select, so polars looks at the columns in parallel)
    dirty = frame.select(pl.col(n).unique().str.contains(BAD_ID).any() for n in names).row(0, named=True)
    frame = frame.with_columns(pl.col(n).str.strip_chars() for n in names if dirty[n])
    checks = [check for name, shown in columns
              for check in id_checks([(name, shown)])[: 2 if dirty[name] else 1]]
    return frame, checks


def _same_as_previous(columns: list[str]) -> pl.Expr:
    return pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in columns]).fill_null(False)


def duplicates(frame: pl.DataFrame, keys: list[str], values: list[str], shown: dict[str, str],
               facts: tuple[bool, bool] | None = None) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Sort by `keys`; drop exact duplicate rows; report rows that share a key but differ in values.

    Sorting once (the renderer wants that order anyway) turns both checks into comparisons of
    neighbouring rows. `facts` = (in key order, some key repeated), when the caller already looked.
    Returns (sorted frame without exact duplicates, problems, rows dropped).
    """
    if facts is None:
        facts = with_previous(frame, keys).select(in_order(keys).alias("o"), repeats(keys).alias("r")).row(0)
    ordered, repeated = facts
    if not ordered:  # exports usually come in time order: skip the copy a sort makes
        frame = frame.sort(keys, maintain_order=True)
        repeated = same_as_previous_any(frame, keys)
    if not repeated:  # no repeated key, so no exact duplicate either
        return frame, pl.DataFrame(schema=PROBLEM_SCHEMA), 0
    clash = _same_as_previous(keys)
    exact = _same_as_previous(keys + values)
    dropped = frame.select(exact.sum()).item()
    if dropped:
        frame = frame.filter(~exact)
        if not same_as_previous_any(frame, keys):
            return frame, pl.DataFrame(schema=PROBLEM_SCHEMA), dropped
    def text(k: str) -> pl.Expr:
        if frame.schema[k] == pl.Datetime("us", "UTC"):
            return pl.lit("interval ") + pl.col(k).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return pl.lit(f"{shown.get(k) or k}=") + pl.col(k).cast(pl.String)

    key_text = pl.concat_str([text(k) for k in keys], separator=" ")
    bad = (
        frame.with_columns(pl.col(LINE).shift(1).alias("_l0"), clash.alias("_clash"))
        .filter(pl.col("_clash"))
        .select(
            FILE, LINE, pl.lit("").alias("column"),
            (pl.lit("duplicate key (") + key_text + pl.lit(") with different values than line ")
             + pl.col("_l0").cast(pl.String)).alias("reason"),
        )
        .cast(PROBLEM_SCHEMA)
    )
    return frame, bad, dropped


def agent_totals_differ() -> pl.Expr:
    """Over a `with_previous` frame in key order: whether two neighbouring rows of one agent and
    interval differ in an unprorated value (any difference shows between neighbours)."""
    group = ["interval_start", "agent_id"]
    return (pl.all_horizontal([pl.col(c).eq_missing(pl.col(PREV + c)) for c in group])
            & pl.any_horizontal([pl.col(c) != pl.col(PREV + c) for c in UNPRORATED]).fill_null(False)).any()


def unprorated_consistency(frame: pl.DataFrame, columns: dict[str, Column]) -> pl.DataFrame:
    """An agent's unprorated values must be identical on all of its rows of one interval (§1.9).

    `frame` is sorted by interval and agent (see `duplicates`), so an agent's rows are neighbours.
    """
    group = ["interval_start", "agent_id"]
    if not with_previous(frame, group + UNPRORATED).select(agent_totals_differ()).item():
        return pl.DataFrame(schema=PROBLEM_SCHEMA)
    prev_same = _same_as_previous(group)
    next_same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(-1)) for c in group]).fill_null(False)
    checks = [
        ((prev_same & (pl.col(c) != pl.col(c).shift(1))) | (next_same & (pl.col(c) != pl.col(c).shift(-1))),
         columns[c].gis,
         pl.lit("differs between this agent's rows of the same interval (must repeat the agent total)"))
        for c in UNPRORATED
    ]
    return collect(checks, frame)
