"""Pure frame → frame functions: no files, no clock, no network.

clock.py       the ACD's local clock: bucketing, the interval grid, alignment, the 15 → 30 decision
intervals.py   rolling 15-minute rows up to 30 minutes
split.py       cutting spans at interval boundaries (vectorised)
contacts.py    CONTACTS → QUEUE_INTERVALS and per agent × queue contact metrics
states.py      STATE_EVENTS → spans → per agent × interval state seconds
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError
from gisgate.model import Batch
from gisgate.transform.contacts import agent_contacts, queue_intervals
from gisgate.transform.states import sort_by_agent, state_seconds

CONTACT_METRICS = [
    "handled",
    "talk_s",
    "hold_s",
    "acw_s",
    "period_handle_s",
    "transferred_out",
    "external_out",
]
AGENTLESS = {"cwfm", "rtstate"}  # outputs that carry state events as they are, not AGENT rows
STATE_METRICS = ["ready_s", "not_ready_s", "in_session_s", "reserved_s"]


def derive(batch: Batch, options: ConvertOptions) -> Batch:
    """Fill the interval frames of `batch` from its contacts and state events, when it has them.

    Interval frames the source already gave are kept. Derived frames use the batch's own
    granularity when it has one, else the output interval, and say so in `source_interval`.
    """
    contacts, events = batch.contacts, batch.state_events
    if contacts is None and events is None:
        return batch
    tz = options.tz
    minutes = batch.source_interval or options.interval
    warnings = list(batch.warnings)
    has_events = events is not None and not events.is_empty()
    until = export_end(batch, options) if has_events else None
    qi = batch.queue_intervals
    if contacts is not None and qi is None:
        qi = queue_intervals(
            contacts,
            tz,
            minutes,
            options.sl_threshold_s,
            services=sorted(set(options.mapping.services.values())),
            covered=_covered(contacts, events if has_events else None, until),
        )
    if options.to in AGENTLESS:
        return replace(batch, queue_intervals=qi, warnings=warnings, source_interval=minutes)
    states = None
    if has_events:
        states, w = state_seconds(events, tz, minutes, until, options.max_span_hours)
        warnings += w
        if not (events["state"] == "RESERVED").any():
            states = states.drop("reserved_s")
    per_agent = agent_contacts(contacts, tz, minutes) if contacts is not None else None
    agents = batch.agent_intervals
    if agents is None and (states is not None or (per_agent is not None and not per_agent.is_empty())):
        agents = agent_rows(states, per_agent, contacts, options)
    derived = agents is not None and agents is not batch.agent_intervals
    ordered = [*batch.in_key_order, *([agents] if derived else [])]  # agent_rows sorts what it derives
    return replace(batch, queue_intervals=qi, agent_intervals=agents, warnings=warnings, source_interval=minutes,
                   in_key_order=ordered)


def _covered(contacts: pl.DataFrame, events: pl.DataFrame | None, until: datetime | None):
    """First and last instant the inputs cover: contacts' times, state events up to the export end
    (exclusive), so SERVICE rows exist for every interval that has AGENT rows."""
    if contacts.is_empty() and events is None:
        return None
    times = [contacts.select(pl.col(c).alias("t")) for c in ("arrived_at", "answered_at", "ended_at")]
    if events is not None:
        times.append(events.filter(pl.col("at") < until).select(pl.col("at").alias("t")))
    t = pl.concat(times)["t"].drop_nulls()
    if t.is_empty():
        return None
    last = t.max()
    if until is not None:
        last = max(last, until - timedelta(microseconds=1))
    return t.min(), last


def export_end(batch: Batch, options: ConvertOptions) -> datetime:
    """Where open state spans stop: `--until`, else what the source says, else the latest event."""
    if options.until:
        try:
            t = datetime.fromisoformat(options.until)
        except ValueError:
            raise ConfigError(f"--until {options.until!r}: not an ISO-8601 time such as 2024-11-03T23:00:00Z") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=ZoneInfo(options.naive_tz))
        return t.astimezone(ZoneInfo("UTC"))
    if batch.covered_until is not None:
        return batch.covered_until
    return batch.state_events["at"].max()


def agent_rows(
    states: pl.DataFrame | None,
    per_agent: pl.DataFrame | None,
    contacts: pl.DataFrame | None,
    options: ConvertOptions,
) -> pl.DataFrame:
    """AGENT_INTERVALS: one row per agent × queue with contact metrics, the agent's state seconds
    repeated on each of its rows, and one home-queue row for an interval without contacts."""
    keys = ["interval_start", "agent_id"]
    metrics = [m for m in STATE_METRICS if states is not None and m in states.columns]
    if per_agent is None or per_agent.is_empty():
        # states only: one row per agent and interval, on the agent's home queue
        rows = states.select(*keys, *metrics)
        rows = rows.with_columns(_home_queue(rows, contacts, options), *[pl.lit(0.0).alias(m) for m in CONTACT_METRICS])
    else:
        rows = per_agent
        if states is not None:
            idle = states.select(keys).join(per_agent.select(keys).unique(), on=keys, how="anti")
            rows = pl.concat([rows, idle.with_columns(pl.lit(None, pl.String).alias("service_id"))], how="diagonal")
            rows = rows.with_columns(pl.col(m).fill_null(0.0) for m in CONTACT_METRICS)
        if rows["service_id"].null_count():
            rows = rows.with_columns(
                pl.coalesce("service_id", _home_queue(rows, contacts, options)).alias("service_id")
            )
            rows = rows.group_by("interval_start", "agent_id", "service_id").agg(pl.col(CONTACT_METRICS).sum())
        if states is not None:
            rows = rows.join(states.select(*keys, *metrics), on=keys, how="left")
            rows = rows.with_columns(pl.col(m).fill_null(0.0) for m in metrics)
    for m in ["ready_s", "not_ready_s", "in_session_s"]:
        if m not in rows.columns:
            rows = rows.with_columns(pl.lit(0.0).alias(m))
    if states is not None and per_agent is not None and not per_agent.is_empty():
        # Not Ready excludes time spent handling contacts (§1.9): never more than what is left of the
        # session once Ready, Reserved and the handling of all the agent's queues are taken out.
        left = (
            pl.col("in_session_s")
            - pl.col("ready_s")
            - pl.col("period_handle_s").sum().over(keys)
            - (pl.col("reserved_s") if "reserved_s" in rows.columns else 0.0)
        )
        rows = rows.with_columns(pl.min_horizontal("not_ready_s", left).clip(0.0).round(6).alias("not_ready_s"))
    if contacts is None:
        rows = rows.drop("transferred_out", "external_out")
    return model.check(sort_by_agent(rows, "service_id"), "AGENT_INTERVALS", "derive")


def _home_queue(rows: pl.DataFrame, contacts: pl.DataFrame | None, options: ConvertOptions) -> pl.Expr:
    """Each agent's home queue: the mapping's `home_queue`, else the queue of most of its contacts,
    else `--service` / `mapping.default_service`. Resolved once per distinct agent."""
    m = options.mapping
    home = dict(m.home_queue)
    home.update({acd: home[raw] for raw, acd in m.agents.items() if raw in home and acd not in home})
    frequent: dict[str, str] = {}
    if contacts is not None:
        top = (
            contacts.filter(pl.col("agent_id").is_not_null() & pl.col("service_id").is_not_null())
            .group_by("agent_id", "service_id")
            .len()
            .sort(["agent_id", "len", "service_id"], descending=[False, True, False])
            .group_by("agent_id", maintain_order=True)
            .first()
        )
        frequent = dict(zip(top["agent_id"].to_list(), top["service_id"].to_list(), strict=True))
    default = options.service or m.default_service
    agents = rows["agent_id"].unique().sort().to_list()
    queue = {a: home.get(a) or frequent.get(a) or default for a in agents}
    missing = [a for a, q in queue.items() if q is None]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ConfigError(
            f"no queue for agent(s) {shown}: the input gives none; pass --service ID, or set "
            "mapping.default_service or mapping.home_queue in the config"
        )
    return pl.col("agent_id").replace_strict(queue, return_dtype=pl.String).alias("service_id")
