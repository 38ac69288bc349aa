"""CONTACTS → QUEUE_INTERVALS and per agent × queue × interval contact metrics (domain-spec §5.1, §5.7).

Attribution: offered by arrival interval; answered and answer delay by answer interval; handled,
abandoned, talk, hold and ACW by end interval; period handle time clipped to every interval the
handling overlaps. Service level is the share of the interval's offered contacts answered within
the threshold (so it never exceeds 100), 0 when nothing was offered. Short abandons count neither
as offered nor as abandoned (§7-Q22); missed contacts (rang out, voicemail) are offered only.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from gisgate.model import QUEUE_INTERVALS
from gisgate.transform import clock
from gisgate.transform.clock import floor_for
from gisgate.transform.split import US, seconds, split

OFFERED = ["answered", "abandoned", "missed"]
HANDLED = ["answered", "outbound"]  # what an agent handles
QUEUE_SUMS = ["offered", "handled", "answered", "abandoned", "talk_s", "hold_s", "acw_s", "answer_delay_s"]


def _floor(lf: pl.LazyFrame, tz: str, minutes: int):
    cols = ["arrived_at", "answered_at", "ended_at"]
    first, last = (
        lf.select(pl.min_horizontal(pl.col(cols).min()).alias("a"), pl.max_horizontal(pl.col(cols).max()).alias("b"))
        .collect()
        .row(0)
    )
    return floor_for(tz, minutes, first, last)


def _by(lf: pl.LazyFrame, when: str, floor, **aggs: pl.Expr) -> pl.LazyFrame:
    return (
        lf.with_columns(floor(pl.col(when)).alias("interval_start"))
        .group_by("interval_start", "service_id")
        .agg(**aggs)
    )


def queue_services(contacts: pl.DataFrame) -> set[str]:
    """The queues `queue_intervals` gives rows for from these contacts (inbound, offered)."""
    inbound = contacts.filter((pl.col("direction") == "in") & pl.col("service_id").is_not_null()
                              & pl.col("outcome").is_in(OFFERED))
    return set(inbound["service_id"].unique().to_list())


def queue_intervals(
    contacts: pl.DataFrame | pl.LazyFrame,
    tz: str,
    minutes: int,
    sl_threshold_s: float,
    services: list[str] = (),
    covered: tuple[datetime, datetime] | None = None,
) -> pl.DataFrame:
    """QUEUE_INTERVALS from inbound contacts, with a zero row for every queue (those in the data and
    `services`) in every interval from the first to the last covered instant (`covered`, else the
    contacts' own first and last instants)."""
    lf = contacts.lazy().filter((pl.col("direction") == "in") & pl.col("service_id").is_not_null())
    facts = _queue_sums(lf, _floor(lf, tz, minutes), sl_threshold_s)
    if covered is None:
        bounds = lf.select(
            pl.min_horizontal(pl.col("arrived_at").min(), pl.col("ended_at").min()).alias("a"),
            pl.max_horizontal(pl.col("arrived_at").max(), pl.col("answered_at").max(), pl.col("ended_at").max()).alias(
                "b"
            ),
        ).collect()
        covered = (bounds["a"][0], bounds["b"][0])
    all_services = sorted(set(facts["service_id"].unique().to_list()) | set(services))
    if covered[0] is None or not all_services:
        return pl.DataFrame(schema=QUEUE_INTERVALS).drop("blocked", "sl_threshold_s", "max_in_queue")
    return _on_grid(facts, clock.grid(covered[0], covered[1], tz, minutes), all_services)


def _queue_sums(lf: pl.LazyFrame, floor, sl_threshold_s: float) -> pl.DataFrame:
    """Per interval × queue: offered (by arrival), answered and answer delay (by answer), handled,
    talk, hold and ACW (by end), abandoned (by end), and `sl_n` (answered within the threshold)."""
    one = pl.len().cast(pl.Float64)
    answered = pl.col("outcome") == "answered"
    parts = [
        _by(lf.filter(pl.col("outcome").is_in(OFFERED)), "arrived_at", floor, offered=one,
            sl_n=(answered & (pl.col("wait_s") <= sl_threshold_s)).cast(pl.Float64).sum()),
        _by(lf.filter(answered & pl.col("answered_at").is_not_null()), "answered_at", floor, answered=one,
            answer_delay_s=pl.col("wait_s").fill_null(0).sum()),
        _by(lf.filter(answered), "ended_at", floor, handled=one, talk_s=pl.col("talk_s").sum(),
            hold_s=pl.col("hold_s").sum(), acw_s=pl.col("acw_s").sum()),
        _by(lf.filter(pl.col("outcome") == "abandoned"), "ended_at", floor, abandoned=one),
    ]
    return pl.concat(parts, how="diagonal_relaxed").collect()


def _on_grid(facts: pl.DataFrame, starts: pl.DataFrame, services: list[str]) -> pl.DataFrame:
    """The sums on every interval × queue of the grid (zero where nothing happened), with the service level."""
    grid = starts.join(pl.DataFrame({"service_id": services}, schema={"service_id": pl.String}), how="cross")
    out = (
        grid.join(facts.group_by("interval_start", "service_id").agg(pl.all().sum()),
                  on=["interval_start", "service_id"], how="left")
        .with_columns([pl.col(c).fill_null(0.0) for c in [*QUEUE_SUMS, "sl_n"] if c in facts.columns])
        .with_columns([pl.lit(0.0).alias(c) for c in [*QUEUE_SUMS, "sl_n"] if c not in facts.columns])
        .with_columns(
            pl.when(pl.col("offered") > 0)
            .then((pl.col("sl_n") * 100.0 / pl.col("offered")).clip(0.0, 100.0))
            .otherwise(0.0)
            .alias("service_level_pct")
        )
    )
    cols = [c for c in QUEUE_INTERVALS if c in out.columns]
    return (
        out.select(cols)
        .with_columns(pl.col(c).cast(QUEUE_INTERVALS[c]) for c in cols)
        .sort("interval_start", "service_id")
    )


def agent_contacts(contacts: pl.DataFrame | pl.LazyFrame, tz: str, minutes: int) -> pl.DataFrame:
    """Per agent × queue × interval: handled, talk_s, hold_s, acw_s (contacts ended in the interval),
    period_handle_s (handling time inside the interval), transferred_out, external_out.

    Handling starts at the answer (or, for outbound contacts without one, at arrival) and lasts
    talk + hold + ACW. `service_id` may be null (outbound contacts outside any queue)."""
    lf = contacts.lazy().filter(pl.col("agent_id").is_not_null() & pl.col("outcome").is_in(HANDLED))
    floor = _floor(lf, tz, minutes)
    ended = (
        lf.with_columns(floor(pl.col("ended_at")).alias("interval_start"))
        .group_by("interval_start", "agent_id", "service_id")
        .agg(
            handled=pl.len().cast(pl.Float64),
            talk_s=pl.col("talk_s").sum(),
            hold_s=pl.col("hold_s").sum(),
            acw_s=pl.col("acw_s").sum(),
            transferred_out=pl.col("transferred").cast(pl.Float64).sum(),
            external_out=(pl.col("direction") == "out").cast(pl.Float64).sum(),
        )
    )
    start = pl.coalesce("answered_at", "arrived_at")
    work_us = ((pl.col("talk_s") + pl.col("hold_s") + pl.col("acw_s")) * US).round(0).cast(pl.Int64)
    handling = lf.select(
        "agent_id", "service_id", start.alias("_s"), (start + pl.duration(microseconds=work_us)).alias("_e")
    )
    period = (
        split(handling, "_s", "_e", tz, minutes)
        .group_by("interval_start", "agent_id", "service_id")
        .agg(seconds(pl.col("piece_us").sum()).alias("period_handle_s"))
    )
    keys = ["interval_start", "agent_id", "service_id"]
    metrics = ["handled", "talk_s", "hold_s", "acw_s", "transferred_out", "external_out", "period_handle_s"]
    return (
        ended.join(period, on=keys, how="full", coalesce=True, nulls_equal=True)
        .with_columns(pl.col(m).fill_null(0.0) for m in metrics)
        .select(*keys, *metrics)
        .collect()
    )
