"""STATE_EVENTS → state spans → per agent × interval state seconds (domain-spec §1.9, §5.7).

A span lasts from an agent's event until the agent's next event. Exact duplicate events are
dropped; events are ordered per agent by time (ties broken by the other columns, so the result
never depends on input order). The last span of each agent ends at the export's end (`until`),
never later; a span longer than `max_span_hours` is cut there and reported, because an agent who
stays Ready for a whole weekend is a missing logout, not a worker.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from gisgate import model
from gisgate.transform.split import US, seconds, split

IN_SESSION = ["NOT_READY", "READY", "TALKING", "WORK_NOT_READY", "WORK_READY", "HOLD", "RESERVED"]
HANDLING = ["TALKING", "WORK_NOT_READY", "WORK_READY", "HOLD"]
RANK = {s: i for i, s in enumerate(model.STATES)}  # 8 states: fits in 3 bits


def spans(events: pl.DataFrame | pl.LazyFrame, until: datetime, max_span_hours: float) -> tuple[pl.LazyFrame, int]:
    """Spans (agent_id, state, reason, start, end) and how many were cut at `max_span_hours`."""
    limit = int(max_span_hours * 3600 * US)
    keys = ["agent_id", "at", "state", "reason", "raw_state"]
    frame = events.lazy().select(keys).collect()
    # Sort by an integer code of the agent (its order only groups an agent's events together), then
    # time and state. Only when events of one agent share time and state are reason and raw text
    # added as tie-breaks, so the result never depends on input order.
    frame = (
        frame.with_columns(
            pl.col("agent_id").cast(pl.Categorical).to_physical().alias("_a"),
            # time and state in one integer key (µs × 8 + state rank): two integer keys sort fastest
            pl.col("state").replace_strict(RANK, default=7, return_dtype=pl.UInt8).alias("_s"),
        )
        .with_columns((pl.col("at").dt.epoch("us") * 8 + pl.col("_s").cast(pl.Int64)).alias("_t"))
    )
    frame = sort_packed(frame, [pl.col("_a"), pl.col("_t")])
    tied = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in ("_a", "_t"))
    if frame.select(tied.any()).item():
        frame = frame.sort("_a", "_t", "reason", "raw_state", nulls_last=True)
        # exact duplicates are neighbours once sorted: cheaper than hashing every row
        same = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in keys)
        frame = frame.filter(~same.fill_null(False))
    agent_changes = pl.col("_a").ne_missing(pl.col("_a").shift(-1))
    frame = (
        frame.with_columns(pl.when(agent_changes).then(None).otherwise(pl.col("at").shift(-1)).alias("end"))
        .with_columns(pl.min_horizontal(pl.col("end").fill_null(until), pl.lit(until)).alias("end"))
        .rename({"at": "start"})
        .filter(pl.col("end") > pl.col("start"))
    )
    too_long = (pl.col("end") - pl.col("start")).dt.total_microseconds() > limit
    cut = frame.select(too_long.sum()).item()
    frame = frame.with_columns(
        pl.when(too_long).then(pl.col("start") + pl.duration(microseconds=limit)).otherwise(pl.col("end")).alias("end")
    )
    return frame.lazy(), int(cut or 0)


def sort_packed(frame: pl.DataFrame, keys: list[pl.Expr]) -> pl.DataFrame:
    """`frame` sorted by the integer `keys` (most significant first), stable.

    When the keys' ranges fit in 63 bits together (weeks of microseconds and thousands of agents
    do), they are packed into one integer: a one-key sort is several times faster than a many-key
    one. Otherwise the keys are sorted as they are.
    """
    if frame.height < 2:
        return frame
    names = [f"_sort{i}" for i in range(len(keys))]
    keyed = frame.with_columns(k.cast(pl.Int64).alias(n) for k, n in zip(keys, names, strict=True))
    bounds = keyed.select(*[pl.col(n).min().alias(f"lo{n}") for n in names],
                          *[pl.col(n).max().alias(f"hi{n}") for n in names]).row(0)
    lows, highs = bounds[:len(names)], bounds[len(names):]
    if None in lows:  # a key that is all null: nothing to pack
        return keyed.sort(names, maintain_order=True).drop(names)
    bits = [max(hi - lo, 1).bit_length() for lo, hi in zip(lows, highs, strict=True)]
    if sum(bits) > 63:
        return keyed.sort(names, maintain_order=True).drop(names)
    packed, shift = pl.lit(0, pl.Int64), sum(bits)
    for name, low, width in zip(names, lows, bits, strict=True):
        shift -= width
        packed = packed + (pl.col(name) - low) * 2**shift
    return keyed.sort(packed, maintain_order=True).drop(names)


def state_seconds(
    events: pl.DataFrame | pl.LazyFrame, tz: str, minutes: int, until: datetime, max_span_hours: float = 12.0
) -> tuple[pl.DataFrame, list[str]]:
    """Per agent × interval: ready_s, not_ready_s, in_session_s, reserved_s, handling_s (row order
    is unspecified).

    Only intervals where the agent was in session (any state but LOGOUT) get a row.
    """
    lf, cut = spans(events, until, max_span_hours)
    frame = lf.collect()
    # Only integer codes travel through the split (agent code, state rank), not the texts: the
    # agent IDs are put back from one row per agent afterwards.
    names = frame.filter(pl.col("_a").ne_missing(pl.col("_a").shift(1))).select("_a", "agent_id")
    core = frame.select("_a", "_s", "start", "end").filter(pl.col("_s").is_in([RANK[s] for s in IN_SESSION]))
    pieces = split(core, "start", "end", tz, minutes)
    p = pl.col("piece_us")
    rank = pl.col("_s")
    grouped = (
        pieces.with_columns(
            pl.when(rank == RANK["READY"]).then(p).otherwise(0).alias("ready"),
            pl.when(rank == RANK["NOT_READY"]).then(p).otherwise(0).alias("not_ready"),
            pl.when(rank == RANK["RESERVED"]).then(p).otherwise(0).alias("reserved"),
            pl.when(rank.is_in([RANK[s] for s in HANDLING])).then(p).otherwise(0).alias("handling"),
        )
        # pieces come ordered by agent, then time: (agent code, interval) is a sorted key, and a
        # group-by on a sorted key needs no hashing
        .with_columns(
            (pl.col("_a").cast(pl.UInt64) * 2**32 + (pl.col("interval_start").dt.epoch("s") // 60).cast(pl.UInt64))
            .set_sorted()
            .alias("_k")
        )
        .group_by("_k", maintain_order=True)
        .agg(
            pl.col("interval_start").first(),
            pl.col("_a").first(),
            pl.col("ready").sum().alias("ready_s"),
            pl.col("not_ready").sum().alias("not_ready_s"),
            p.sum().alias("in_session_s"),
            pl.col("reserved").sum().alias("reserved_s"),
            pl.col("handling").sum().alias("handling_s"),
        )
        .collect()
        .with_columns(seconds(pl.col(c)) for c in ["ready_s", "not_ready_s", "in_session_s", "reserved_s",
                                                   "handling_s"])
    )
    out = grouped.join(names, on="_a", how="left").select(
        "interval_start", "agent_id", "ready_s", "not_ready_s", "in_session_s", "reserved_s", "handling_s"
    )  # row order unspecified (AGENT rows are sorted once, when assembled)
    warnings = []
    if cut:
        warnings.append(
            f"{cut} state span(s) longer than {max_span_hours:g} h were cut at {max_span_hours:g} h (a missing logout?)"
        )
    return out, warnings


def sort_by_agent(frame: pl.DataFrame, *more: str) -> pl.DataFrame:
    """Sort by interval, agent ID (and the text columns `more`): the few distinct IDs are ranked
    once, so that the big sort compares integers, not strings."""
    ranks = []
    for column in ["agent_id", *more]:
        values = frame[column].unique().sort(nulls_last=True).to_list()
        ranks.append(pl.col(column).replace_strict(values, list(range(len(values))), return_dtype=pl.Int64))
    return sort_packed(frame, [pl.col("interval_start").dt.epoch("us"), *ranks])
