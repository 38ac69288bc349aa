"""WHIT CSV from service intervals, with UTC date/period (domain §2.3–2.4).

The WFM side imports it with `timeZone=UTC`, because tenant-local dates cannot hold the repeated
fall-back hour. Totals become averages: avgTalkTime = (talk + hold) / handled, avgACWTime = acw /
handled, ASA = answer delay / answered; when the divisor is 0 the average is 0 and the seconds are
lost (WHIT cannot carry them) — `lost_seconds` reports them.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.model import Batch, Output
from gisgate.render import NEWLINES, number, render_template

COLUMNS = ["serviceName", "serviceNumber", "date", "period", "receivedCalls", "handledCalls", "abandonedCalls",
           "avgTalkTime", "avgACWTime", "ASA", "serviceLevel"]


def _avg(total: pl.Expr, count: pl.Expr) -> pl.Expr:
    return pl.when(count > 0).then(total / count).otherwise(0.0)


def lost_seconds(frame: pl.DataFrame) -> dict[str, float]:
    """Seconds that WHIT cannot carry: time on intervals with no handled (or answered) contact."""
    return frame.select(
        talk_and_acw=pl.when(pl.col("handled") == 0).then(pl.col("talk_s") + pl.col("hold_s") + pl.col("acw_s"))
        .otherwise(0.0).sum(),
        answer_delay=pl.when(pl.col("answered") == 0).then(pl.col("answer_delay_s")).otherwise(0.0).sum(),
    ).row(0, named=True)


def count(batch: Batch, options: ConvertOptions) -> int:
    return 1


def missing(batch: Batch) -> str | None:
    return "WHIT needs service (queue) data; the input holds agent data only" if batch.queue_intervals is None else None


def warnings(batch: Batch) -> list[str]:
    lost = lost_seconds(batch.queue_intervals)
    if lost["talk_and_acw"] or lost["answer_delay"]:
        return [f"WHIT cannot carry {lost['talk_and_acw']:.3f} s of talk/hold/ACW on intervals with no handled "
                f"contact and {lost['answer_delay']:.3f} s of answer delay on intervals with none answered"]
    return []


def render(batch: Batch, options: ConvertOptions) -> Iterator[Output]:
    frame = batch.queue_intervals
    if frame is None or frame.is_empty():
        return
    non_numeric = frame.filter(~pl.col("service_id").str.contains(r"^\d+$"))["service_id"].unique().sort()
    if len(non_numeric):
        raise InputError([Problem("", 0, "serviceNumber",
                                  f"WHIT needs numeric service numbers; {s!r} is not (map it in [mapping.services])")
                          for s in non_numeric.to_list()[:20]])
    nl = NEWLINES[options.newline]
    names = options.mapping.service_names
    has_queue = "max_in_queue" in frame.columns
    frame = frame.sort("interval_start", "service_id")
    start = pl.col("interval_start")
    fields = [
        pl.col("service_id").replace_strict(names, default=pl.col("service_id")) if names else pl.col("service_id"),
        pl.col("service_id"),
        start.dt.strftime("%Y-%m-%d"),
        start.dt.strftime("%H:%M"),
        number(pl.col("offered"), 3),
        number(pl.col("handled"), 3),
        number(pl.col("abandoned"), 3),
        number(_avg(pl.col("talk_s") + pl.col("hold_s"), pl.col("handled")), 3),
        number(_avg(pl.col("acw_s"), pl.col("handled")), 3),
        number(_avg(pl.col("answer_delay_s"), pl.col("answered")), 3),
        # serviceLevel must be an integer 0–100: round half up, clamp.
        pl.col("service_level_pct").round(0, mode="half_away_from_zero").clip(0, 100).cast(pl.Int64).cast(pl.String),
    ]
    if has_queue:
        fields.append(number(pl.col("max_in_queue"), 3))
    header = ",".join(COLUMNS + (["contactsInQueue"] if has_queue else []))
    body = frame.select(pl.concat_str(fields, separator=",").str.join(nl)).item()
    first, last = frame["interval_start"].min(), frame["interval_start"].max()
    name = render_template("whit/filename.j2", acd=options.acd, first=first, last=last)
    yield Output(name, f"{header}{nl}{body}{nl}".encode(), "whit", None)
