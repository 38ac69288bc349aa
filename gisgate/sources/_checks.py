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
               facts: tuple[bool, bool] | None = None, consume: bool = False,
               order: KeyOrder | None = None) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Sort by `keys`; drop exact duplicate rows; report rows that share a key but differ in values.

    Sorting once (the renderer wants that order anyway) turns both checks into comparisons of
    neighbouring rows. `facts` = (in key order, some key repeated), when the caller already looked;
    `consume` and `order` (the frame's key order, when the caller found it): see `sort_by_keys`.
    Returns (sorted frame without exact duplicates, problems, rows dropped).
    """
    if facts is None:
        facts = with_previous(frame, keys).select(in_order(keys).alias("o"), repeats(keys).alias("r")).row(0)
    ordered, repeated = facts
    if not ordered:  # exports usually come in time order: skip the copy a sort makes
        frame, repeated = sort_by_keys(frame, keys, consume=consume, order=order)
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


def sort_by_keys(frame: pl.DataFrame, keys: list[str], consume: bool = False,
                 order: KeyOrder | None = None) -> tuple[pl.DataFrame, bool]:
    """`frame.sort(keys, maintain_order=True)`, and whether some key repeats, sorting integers only
    (see `key_order`; `order`, when the caller found it already). With `consume`, the columns are
    taken out of `frame` as they are gathered (it is left empty), so that the sorted copy does not
    double the memory. Keys with nulls, or too wide to pack, take `frame.sort`.
    """
    order = order or key_order(frame, keys)
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

    `rows`: the row numbers in key order. `packed`: in the same order, each row's keys as one
    non-negative integer above `row_bits` bits of its row number (equal keys, equal parts above;
    their order is the keys' order); `shifts`: the bit, above those, where each key's part starts.
    """

    rows: pl.Series
    packed: pl.Series
    row_bits: int
    shifts: dict[str, int]

    @property
    def repeated(self) -> bool:
        return bool(self.same_as_previous(next(reversed(self.shifts))).any())

    def same_as_previous(self, keys_up_to: str) -> pl.Series:
        """Whether each row, in this order, has the keys up to `keys_up_to` of the row before it."""
        shift = self.row_bits + self.shifts[keys_up_to]

        def part(at: int, n: int) -> pl.Series:  # (with the row before the slice, to compare the first)
            before = min(at, 1)
            keys = self.packed.slice(at - before, n + before) // (1 << shift)
            return (keys.diff() == 0).fill_null(False).slice(before, n)

        return _by_slices(len(self.packed), part)


def key_order(frame: pl.DataFrame, keys: list[str]) -> KeyOrder | None:
    """The `KeyOrder` of `frame` by `keys`, by one plain sort of Int64s; None when a key has nulls
    or the keys are too wide to pack in 63 bits.

    Each key becomes a small integer in its order (an ID its rank among the few distinct IDs, an
    instant its minutes or µs from the first), packed with the row number into one Int64, a
    million rows at a time: the codes of a whole column are never held beside the frame.
    """
    if frame.height < 2 or any(frame[k].null_count() for k in keys):
        return None
    row_bits = (frame.height - 1).bit_length()
    packed, shift, shifts = pl.int_range(pl.len(), dtype=pl.Int64), row_bits, {}
    for k in reversed(keys):
        code = _code(frame, k)
        if code is None:
            return None
        expr, width = code
        if shift + width > 63:
            return None
        packed = packed + expr * (1 << shift)
        shifts[k] = shift - row_bits
        shift += width
    packed = _by_slices(frame.height, lambda at, n: frame.slice(at, n).select(packed + at).to_series()).sort()
    index = pl.UInt32 if frame.height < 2**32 else pl.UInt64
    rows = _by_slices(frame.height, lambda at, n: (packed.slice(at, n) % (1 << row_bits)).cast(index))
    return KeyOrder(rows, packed, row_bits, {k: shifts[k] for k in keys})


SLICE = 1 << 20


def _by_slices(height: int, part) -> pl.Series:
    """`part(at, n)` over consecutive slices of `height` rows, as one series."""
    return pl.concat([part(at, min(SLICE, height - at)) for at in range(0, height, SLICE)], rechunk=False)


def _code(frame: pl.DataFrame, key: str) -> tuple[pl.Expr, int] | None:
    """(non-negative Int64 in the order of `key`'s values: equal values, equal codes; its width in
    bits), or None."""
    s, col = frame[key], pl.col(key)
    if s.dtype == pl.String:
        ids = s.unique().sort()  # a few thousand distinct IDs among millions of rows
        # (an enum of the sorted IDs codes each by its rank: faster than replacing texts by numbers)
        return col.cast(pl.Enum(ids)).to_physical().cast(pl.Int64), max(len(ids) - 1, 1).bit_length()
    if s.dtype.is_temporal() or s.dtype.is_integer():
        n = col.to_physical().cast(pl.Int64)
        minutes = s.dtype == pl.Datetime("us", "UTC")
        lo, hi, odd = frame.select(n.min().alias("lo"), n.max().alias("hi"),
                                   ((n % 60_000_000 != 0).any() if minutes else pl.lit(True)).alias("odd")).row(0)
        if (hi - lo).bit_length() > 62:  # (also keeps `n - lo` from overflowing)
            return None
        if minutes and not odd:  # interval starts fall on whole minutes: fewer bits
            return (n - lo) // 60_000_000, max((hi - lo) // 60_000_000, 1).bit_length()
        return n - lo, max(hi - lo, 1).bit_length()
    return None


def agent_totals_differ() -> pl.Expr:
    """Over a `with_previous` frame in key order: whether two neighbouring rows of one agent and
    interval differ in an unprorated value (any difference shows between neighbours)."""
    group = ["interval_start", "agent_id"]
    return (pl.all_horizontal([pl.col(c).eq_missing(pl.col(PREV + c)) for c in group])
            & pl.any_horizontal([pl.col(c) != pl.col(PREV + c) for c in UNPRORATED]).fill_null(False)).any()


def agent_totals_differ_in(frame: pl.DataFrame, order: KeyOrder) -> bool:
    """`agent_totals_differ` over `frame` taken in `order`, a slice of rows at a time."""
    same = order.same_as_previous("agent_id")
    values = frame.select(UNPRORATED)

    def part(at: int, n: int) -> pl.Series:  # (with the row before the slice, to compare the first)
        before = min(at, 1)
        rows = values.gather(order.rows.slice(at - before, n + before)).with_columns(
            same.slice(at - before, n + before).alias("\0same"))
        return rows.select((pl.col("\0same") & pl.any_horizontal(pl.col(c) != pl.col(c).shift(1) for c in UNPRORATED))
                           .fill_null(False).any()).to_series()

    return bool(_by_slices(frame.height, part).any())


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
