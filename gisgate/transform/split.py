"""Cutting time spans at interval boundaries on the ACD's local clock, vectorised.

A span [start, end) that crosses k boundaries becomes k + 1 pieces, one per interval it touches,
each clipped to its interval. No Python loop runs per row: the number of pieces is computed per
span, `int_ranges` + `explode` makes the pieces, and `clip` cuts them.

Local-clock boundaries are `minutes` apart in UTC too: every DST change (whole hour, or half an
hour on Lord Howe) and every zone offset in use is a multiple of 15 minutes, so stepping from the
first interval start by whole intervals in UTC lands on every later boundary, DST days included.
"""

from __future__ import annotations

import polars as pl

from gisgate.transform.clock import floor_for

US = 1_000_000  # microseconds per second
MICRO = pl.lit(1).cast(pl.Decimal(38, 6)) / US  # 10⁻⁶ as a decimal, exact


def split(frame: pl.LazyFrame | pl.DataFrame, start: str, end: str, tz: str, minutes: int) -> pl.LazyFrame:
    """One row per (span, interval it overlaps), with `interval_start` and the overlap `piece_us`.

    `start`/`end` are UTC datetime columns; spans with end <= start are dropped. All other columns
    are carried along. `piece_us` is an Int64 count of microseconds, so sums are exact.
    """
    step = minutes * 60 * US
    lf = frame.lazy().filter(pl.col(end) > pl.col(start))
    bounds = lf.select(pl.col(start).min(), pl.col(end).max()).collect().row(0)
    floor = floor_for(tz, minutes, *bounds)
    first = floor(pl.col(start))
    last = floor(pl.col(end) - pl.duration(microseconds=1))
    return (
        lf.with_columns(first.alias("_first"), ((last - first).dt.total_microseconds() // step).alias("_n"))
        .with_columns(pl.int_ranges(0, pl.col("_n") + 1, dtype=pl.Int64).alias("_k"))
        .explode("_k")
        .with_columns((pl.col("_first") + pl.duration(microseconds=pl.col("_k") * step)).alias("interval_start"))
        .with_columns(
            (
                pl.min_horizontal(pl.col(end), pl.col("interval_start") + pl.duration(microseconds=step))
                - pl.max_horizontal(pl.col(start), pl.col("interval_start"))
            )
            .dt.total_microseconds()
            .alias("piece_us")
        )
        .drop("_first", "_n", "_k")
    )


def seconds(us: pl.Expr) -> pl.Expr:
    """Microseconds (Int64) to float seconds, correctly rounded: 7000 µs is 0.007.

    polars divides floats by multiplying with the reciprocal (7000 / 1e6 gives 0.006999999999999999,
    and 500 µs could round the wrong way at three decimals). As a decimal, µs × 10⁻⁶ is exact (the
    same digits, scale 6), and the decimal is converted to a float once; a decimal product is twice
    as fast as a decimal division.
    """
    return (us.cast(pl.Decimal(38, 0)) * MICRO).cast(pl.Float64)
