"""Row checks shared by the sources that read interval data (generic, WHIT).

Each check returns a frame of problems (`_file`, `_line`, `column`, `reason`) rather than raising,
so that one pass reports every bad row of every input. Frames carry `_file` (an index into the
list of input names) and `_line` (the physical line of the row in its file).
"""

from __future__ import annotations

from dataclasses import dataclass

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
               facts: tuple[bool, bool] | None = None, consume: bool = False) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Sort by `keys`; drop exact duplicate rows; report rows that share a key but differ in values.

    Sorting once (the renderer wants that order anyway) turns both checks into comparisons of
    neighbouring rows. `facts` = (in key order, some key repeated), when the caller already looked;
    `consume`: see `sort_by_keys`.
    Returns (sorted frame without exact duplicates, problems, rows dropped).
    """
    if facts is None:
        facts = with_previous(frame, keys).select(in_order(keys).alias("o"), repeats(keys).alias("r")).row(0)
    ordered, repeated = facts
    if not ordered:  # exports usually come in time order: skip the copy a sort makes
        frame, repeated = sort_by_keys(frame, keys, consume=consume)
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


def sort_by_keys(frame: pl.DataFrame, keys: list[str], consume: bool = False) -> tuple[pl.DataFrame, bool]:
    """`frame.sort(keys, maintain_order=True)`, and whether some key repeats, sorting integers only
    (see `key_order`). With `consume`, the columns are taken out of `frame` as they are gathered
    (it is left empty), so that the sorted copy does not double the memory. Keys with nulls, or too
    wide to pack, take `frame.sort`.
    """
    order = key_order(frame, keys)
    if order is None:
        out = frame.sort(keys, maintain_order=True)
        for name in frame.columns if consume else []:
            frame.drop_in_place(name)
        return out, same_as_previous_any(out, keys)
    if not consume:
        return frame.rechunk().gather(order.rows), order.repeated
    names, out = frame.columns, {}
    for i in range(0, len(names), 2):  # two columns at a time: both cores gather, little extra memory
        pair = frame.select(names[i:i + 2])
        for name in names[i:i + 2]:
            frame.drop_in_place(name)
        # (in one piece first: gathering across the reader's many pieces costs more)
        out.update(pair.rechunk().gather(order.rows).to_dict())
        del pair
    return pl.DataFrame(out), order.repeated


@dataclass(frozen=True)
class KeyOrder:
    """The row order that sorts a frame by its keys (stable), found without moving a row.

    `rows`: the row numbers in key order; `codes`: each of those rows' keys as one non-negative
    integer (equal keys, equal codes; their order is the keys' order); `shifts`: the bit where each
    key's part of a code starts, so `codes >> shifts[k]` is the code of the keys up to `k`.
    """

    rows: pl.Series
    codes: pl.Series
    shifts: dict[str, int]

    @property
    def repeated(self) -> bool:
        return bool(self.codes.to_frame("k").select(pl.col("k").diff().eq(0).any()).item())

    def changes(self, keys_up_to: str) -> pl.Expr:
        """Over a frame in this order: whether a row's keys up to `keys_up_to` differ from the row
        before it (true on the first row)."""
        group = pl.lit(self.codes) // (1 << self.shifts[keys_up_to])
        return group.diff().fill_null(1) != 0


def key_order(frame: pl.DataFrame, keys: list[str]) -> KeyOrder | None:
    """The `KeyOrder` of `frame` by `keys`, by one plain sort of Int64s; None when a key has nulls
    or the keys are too wide to pack in 63 bits.

    Each key becomes a small integer in its order (an ID its rank among the few distinct IDs, an
    instant its minutes or µs from the first); they and the row number are packed into one Int64,
    from the least significant part up, so that one key's codes are alive at a time.
    """
    if frame.height < 2 or any(frame[k].null_count() for k in keys):
        return None
    row_bits = (frame.height - 1).bit_length()
    packed, shift, shifts = pl.int_range(0, frame.height, dtype=pl.Int64, eager=True), row_bits, {}
    for k in reversed(keys):
        code = _code(frame[k])
        if code is None:
            return None
        width = max(int(code.max()), 1).bit_length()
        if shift + width > 63:
            return None
        packed = packed + code.cast(pl.Int64) * (1 << shift)
        shifts[k] = shift - row_bits
        shift += width
        del code
    packed = packed.sort()
    rows = (packed % (1 << row_bits)).cast(pl.UInt32 if frame.height < 2**32 else pl.UInt64)
    return KeyOrder(rows, packed // (1 << row_bits), shifts)


def _code(s: pl.Series) -> pl.Series | None:
    """Non-negative integers in the order of `s`'s values (equal values, equal codes), or None."""
    if s.dtype == pl.String:
        cat = s.cast(pl.Categorical(pl.Categories.random()))  # codes by first appearance
        seen = cat.unique()  # (one row per code: cheap)
        code, text = seen.to_physical(), seen.cast(pl.String)
        rank = pl.zeros(int(code.max()) + 1, pl.UInt32, eager=True).scatter(code.gather(text.arg_sort()),
                                                                            pl.int_range(len(code), eager=True))
        return rank.gather(cat.to_physical())
    if s.dtype.is_temporal() or s.dtype.is_integer():
        lo, hi = s.to_physical().min(), s.to_physical().max()
        if (hi - lo).bit_length() > 62:  # (also keeps `n - lo` from overflowing)
            return None
        n = s.to_physical().cast(pl.Int64) - lo
        if s.dtype == pl.Datetime("us", "UTC") and not (n % 60_000_000 != 0).any():
            n = n // 60_000_000  # interval starts fall on whole minutes: fewer bits
        return n
    return None


def agent_totals_differ() -> pl.Expr:
    """Over a `with_previous` frame in key order: whether two neighbouring rows of one agent and
    interval differ in an unprorated value (any difference shows between neighbours)."""
    group = ["interval_start", "agent_id"]
    return (pl.all_horizontal([pl.col(c).eq_missing(pl.col(PREV + c)) for c in group])
            & pl.any_horizontal([pl.col(c) != pl.col(PREV + c) for c in UNPRORATED]).fill_null(False)).any()


def agent_totals_differ_in(frame: pl.DataFrame, order: KeyOrder) -> bool:
    """`agent_totals_differ` over `frame` taken in `order`, gathering one unprorated column at a time."""
    same = pl.select(~order.changes("agent_id")).to_series()
    for c in UNPRORATED:
        values = frame[c].gather(order.rows).to_frame()
        if values.select((pl.lit(same) & (pl.col(c) != pl.col(c).shift(1))).fill_null(False).any()).item():
            return True
    return False


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
