"""JSON bodies built column-wise: each row becomes one JSON object text, rows are joined per batch."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import polars as pl

from gisgate.render import number

UTC_TEXT = "%Y-%m-%d %H:%M:%S"  # CommunityWFM dates (domain-spec §4.2.4): UTC, culture-independent


def number_text(expr: pl.Expr) -> pl.Expr:
    """A number as JSON-string text: plain decimals, up to 3 places, no trailing zeros (`12`, `1800.5`)."""
    return number(expr, 3)


def objects(frame: pl.DataFrame, fields: list[pl.Expr], optional: dict[str, pl.Expr] | None = None) -> pl.Series:
    """One compact JSON object per row, fields in the given order; each `optional` field (name →
    value) is appended only on rows where its value is not null."""
    base = frame.select(pl.struct(fields).struct.json_encode().alias("j"))["j"]
    for name, value in (optional or {}).items():
        extra = frame.select(
            pl.struct(value.alias(name)).struct.json_encode().str.slice(1).alias("x"), value.is_null().alias("n")
        )
        base = (
            pl.DataFrame({"j": base, "x": extra["x"], "n": extra["n"]})
            .select(
                pl.when(pl.col("n"))
                .then(pl.col("j"))
                .otherwise(pl.col("j").str.strip_suffix("}") + pl.lit(",") + pl.col("x"))
            )
            .to_series()
        )
    return base


def chunks(objects: pl.Series, groups: pl.Series | None, size: int) -> Iterator[str]:
    """Comma-joined runs of at most `size` objects; a run never splits a group (e.g. one interval)
    unless the group alone is larger than `size`."""
    n = len(objects)
    if groups is None or n == 0:
        bounds = list(range(0, n, size)) + [n]
    else:
        change = groups.ne_missing(groups.shift(1))
        starts = pl.int_range(0, n, eager=True).filter(change).to_list()  # group starts, no per-row loop
        starts.append(n)
        bounds, cur = [0], 0
        for a, b in pairwise(starts):
            if b - cur > size and a > cur:
                bounds.append(a)
                cur = a
            while b - cur > size:
                cur += size
                bounds.append(cur)
        bounds.append(n)
    for a, b in pairwise(bounds):
        if b > a:
            yield ",".join(objects.slice(a, b - a).to_list())
