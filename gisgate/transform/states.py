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
    frame = frame.sort(_agent_time_key(frame))
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


def _agent_time_key(frame: pl.DataFrame) -> pl.Expr | list[str]:
    """(agent code, time-and-state) packed into one integer when both fit in 63 bits (a week of
    events and thousands of agents do): a one-key sort is several times faster than a two-key one."""
    if frame.is_empty():
        return ["_a", "_t"]
    t0, t1, a1 = frame.select(pl.col("_t").min().alias("t0"), pl.col("_t").max().alias("t1"),
                              pl.col("_a").max().alias("a1")).row(0)
    t_bits = max(t1 - t0, 1).bit_length()
    if t_bits + max(a1, 1).bit_length() > 63:
        return ["_a", "_t"]
    return pl.col("_a").cast(pl.Int64) * 2**t_bits + (pl.col("_t") - t0)


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
    """Sort by interval, agent ID (and the text columns `more`), fast: the few distinct IDs are
    ranked once, and interval and ranks are packed into one integer key (one-key sorts are several
    times faster than many-key ones) when they fit in 64 bits."""
    names = ["agent_id", *more]
    distinct = [frame[c].unique().sort(nulls_last=True).to_list() for c in names]
    ranks = [pl.col(c).replace_strict(v, list(range(len(v))), return_dtype=pl.UInt64) for c, v in zip(
        names, distinct, strict=True)]
    bits = [max(len(v) - 1, 1).bit_length() for v in distinct]
    minutes = pl.col("interval_start").dt.epoch("s") // 60  # intervals start on whole minutes
    low, high = frame.select(minutes.min().alias("lo"), minutes.max().alias("hi")).row(0) if frame.height else (0, 0)
    if low < 0 or high >= 2 ** (64 - sum(bits)):
        return frame.sort(pl.col("interval_start"), *ranks, maintain_order=True)
    key = minutes.cast(pl.UInt64) * 2 ** sum(bits)
    shift = sum(bits)
    for rank, width in zip(ranks, bits, strict=True):
        shift -= width
        key = key + rank * 2**shift
    return frame.sort(key, maintain_order=True)
