"""Rolling 15-minute interval rows up to 30 minutes on the ACD's local clock (see clock.py)."""

from __future__ import annotations

import polars as pl

from gisgate.transform.clock import floor_local


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
