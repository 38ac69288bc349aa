"""Interval arithmetic on the ACD's local clock.

An interval is identified by its UTC start instant. Its boundaries are on the local clock of the
ACD's IANA zone, so in Asia/Kathmandu (+05:45) 10:00 local is 04:15 UTC, and on the fall-back day
in America/New_York there are two different 01:00 intervals (05:00Z and 06:00Z).
"""

from __future__ import annotations

import polars as pl

from gisgate.model import floor_local

__all__ = ["floor_local", "is_aligned", "local_minute_of_day"]


def local_minute_of_day(utc: pl.Expr, tz: str) -> pl.Expr:
    local = utc.dt.convert_time_zone(tz)
    return local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)


def is_aligned(utc: pl.Expr, tz: str, minutes: int) -> pl.Expr:
    """True where the instant is exactly on a local-clock interval boundary."""
    return floor_local(utc, tz, minutes) == utc


def infer_source_interval(frames: list[pl.DataFrame | None], tz: str) -> int | None:
    """15 when any interval starts at local :15 or :45; otherwise None (the data cannot tell).

    Gaps between starts prove nothing (a quiet queue has gaps), so 30-minute input is never
    guessed: it is declared with --source-interval 30.
    """
    # A few hundred distinct starts among millions of rows: test each once (zone lookups are dear).
    parts = [f.select(pl.col("interval_start").unique()) for f in frames if f is not None and not f.is_empty()]
    if not parts:
        return None
    off_half_hour = pl.concat(parts).select((~is_aligned(pl.col("interval_start"), tz, 30)).any()).item()
    return 15 if off_half_hour else None


def roll_up_queue(frame: pl.DataFrame, tz: str, minutes: int) -> pl.DataFrame:
    """Sum counts and seconds into `minutes`-long intervals; service level weighted by offered.

    A service level is a ratio: averaging percentages would be wrong, so it is rebuilt from its
    numerator (sl × offered) and denominator (offered); 0 when nothing was offered.
    """
    cols = [c for c in frame.columns if c not in ("interval_start", "service_id")]
    sums = [pl.col(c).sum() for c in cols if c not in ("service_level_pct", "max_in_queue", "sl_threshold_s")]
    extra = []
    if "max_in_queue" in cols:
        extra.append(pl.col("max_in_queue").max())
    if "sl_threshold_s" in cols:
        extra.append(pl.col("sl_threshold_s").max())
    weighted = (pl.col("service_level_pct") * pl.col("offered")).sum()
    return (
        frame.with_columns(floor_local(pl.col("interval_start"), tz, minutes).alias("interval_start"))
        .group_by("interval_start", "service_id", maintain_order=True)
        .agg(
            *sums,
            *extra,
            pl.when(pl.col("offered").sum() > 0)
            .then(weighted / pl.col("offered").sum())
            .otherwise(0.0)
            .alias("service_level_pct"),
        )
        .select(frame.columns)
    )


def roll_up_agent(frame: pl.DataFrame, tz: str, minutes: int) -> pl.DataFrame:
    """Sum an agent × queue's values into longer intervals; unprorated values per agent.

    The unprorated ready / not-ready / in-session values repeat on each of an agent's rows, so
    they are taken once per agent and short interval, summed per agent and long interval, and
    repeated again on each of the agent's rows of the long interval.
    """
    unprorated = ["ready_s", "not_ready_s", "in_session_s"]
    long_start = floor_local(pl.col("interval_start"), tz, minutes).alias("_long")
    frame = frame.with_columns(long_start)
    agent_totals = (
        frame.group_by("interval_start", "agent_id")
        .agg(pl.col(unprorated).first())
        .with_columns(floor_local(pl.col("interval_start"), tz, minutes).alias("_long"))
        .group_by("_long", "agent_id")
        .agg(pl.col(unprorated).sum())
    )
    per_queue = [
        c for c in frame.columns if c not in ("interval_start", "_long", "agent_id", "service_id", *unprorated)
    ]
    return (
        frame.group_by("_long", "agent_id", "service_id", maintain_order=True)
        .agg(pl.col(per_queue).sum())
        .join(agent_totals, on=["_long", "agent_id"], how="left")
        .rename({"_long": "interval_start"})
        .select([c for c in frame.columns if c != "_long"])
    )
