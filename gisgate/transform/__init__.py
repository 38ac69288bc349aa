"""Pure frame → frame functions: no files, no clock, no network.

clock.py       the ACD's local clock: bucketing, the interval grid, alignment, the 15 → 30 decision
intervals.py   rolling 15-minute rows up to 30 minutes
split.py       cutting spans at interval boundaries (vectorised)
contacts.py    CONTACTS → QUEUE_INTERVALS and per agent × queue contact metrics
states.py      STATE_EVENTS → spans → per agent × interval state seconds
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError
from gisgate.model import Batch
from gisgate.transform.contacts import agent_contacts, queue_intervals
from gisgate.transform.facts import Facts, facts_of
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


def derive(batch: Batch, options: ConvertOptions, facts: Facts | None = None) -> Batch:
    """Fill the interval frames of `batch` from its contacts and state events, when it has them.

    Interval frames the source already gave are kept. Derived frames use the batch's own
    granularity when it has one, else the output interval, and say so in `source_interval`.
    `facts` are what is decided from all of the data (see facts.py); by default the batch's own.
    """
    facts = facts if facts is not None else facts_of(batch, options)
    contacts, events = batch.contacts, batch.state_events
    if contacts is None and events is None and not (facts.contacts or facts.events):
        return batch
    if facts.contacts and contacts is None:
        contacts = pl.DataFrame(schema=model.CONTACTS)
    if facts.events and events is None:
        events = pl.DataFrame(schema=model.STATE_EVENTS)
    tz = options.tz
    minutes = batch.source_interval or options.interval
    warnings = list(batch.warnings)
    qi = batch.queue_intervals
    if contacts is not None and qi is None:
        qi = queue_intervals(contacts, tz, minutes, options.sl_threshold_s, services=list(facts.services),
                             covered=facts.covered)
    if options.to in AGENTLESS:
        return replace(batch, queue_intervals=qi, warnings=warnings, source_interval=minutes)
    states = None
    if facts.events:
        states, w = state_seconds(events, tz, minutes, facts.until, options.max_span_hours)
        warnings += w
        if not facts.reserved:
            states = states.drop("reserved_s")
    per_agent = agent_contacts(contacts, tz, minutes) if contacts is not None else None
    agents = batch.agent_intervals
    if agents is None and (states is not None or facts.handled):
        agents = agent_rows(states, per_agent, facts, options)
    derived = agents is not None and agents is not batch.agent_intervals
    ordered = [*batch.in_key_order, *([agents] if derived else [])]  # agent_rows sorts what it derives
    return replace(batch, queue_intervals=qi, agent_intervals=agents, warnings=warnings, source_interval=minutes,
                   in_key_order=ordered)


def agent_rows(states: pl.DataFrame | None, per_agent: pl.DataFrame | None, facts: Facts,
               options: ConvertOptions) -> pl.DataFrame:
    """AGENT_INTERVALS: one row per agent × queue with contact metrics, the agent's state seconds
    repeated on each of its rows, and one home-queue row for an interval without contacts."""
    keys = ["interval_start", "agent_id"]
    metrics = [m for m in STATE_METRICS if states is not None and m in states.columns]
    if not facts.handled:
        # states only: one row per agent and interval, on the agent's home queue, in the key order
        # state_seconds gives (the queue never breaks a tie)
        rows = states.select(*keys, *metrics)
        rows = rows.with_columns(_home_queue(rows, facts, options), *[pl.lit(0.0).alias(m) for m in CONTACT_METRICS])
    else:
        rows = per_agent
        if states is not None:
            idle = states.select(keys).join(per_agent.select(keys).unique(), on=keys, how="anti")
            rows = pl.concat([rows, idle.with_columns(pl.lit(None, pl.String).alias("service_id"))], how="diagonal")
            rows = rows.with_columns(pl.col(m).fill_null(0.0) for m in CONTACT_METRICS)
        if rows["service_id"].null_count():
            rows = rows.with_columns(pl.coalesce("service_id", _home_queue(rows, facts, options)).alias("service_id"))
            rows = rows.group_by("interval_start", "agent_id", "service_id").agg(pl.col(CONTACT_METRICS).sum())
        if states is not None:
            rows = rows.join(states.select(*keys, *metrics), on=keys, how="left")
            rows = rows.with_columns(pl.col(m).fill_null(0.0) for m in metrics)
    for m in ["ready_s", "not_ready_s", "in_session_s"]:
        if m not in rows.columns:
            rows = rows.with_columns(pl.lit(0.0).alias(m))
    if states is not None and facts.handled:
        # Not Ready excludes time spent handling contacts (§1.9): never more than what is left of the
        # session once Ready, Reserved and the handling of all the agent's queues are taken out.
        left = (
            pl.col("in_session_s")
            - pl.col("ready_s")
            - pl.col("period_handle_s").sum().over(keys)
            - (pl.col("reserved_s") if "reserved_s" in rows.columns else 0.0)
        )
        rows = rows.with_columns(pl.min_horizontal("not_ready_s", left).clip(0.0).round(6).alias("not_ready_s"))
    if not facts.contacts:
        rows = rows.drop("transferred_out", "external_out")
    return model.check(sort_by_agent(rows, "service_id") if facts.handled else rows, "AGENT_INTERVALS", "derive")


def _home_queue(rows: pl.DataFrame, facts: Facts, options: ConvertOptions) -> pl.Expr:
    """Each agent's home queue: the mapping's `home_queue`, else the queue of most of its contacts,
    else `--service` / `mapping.default_service`. Resolved once per distinct agent."""
    m = options.mapping
    home = dict(m.home_queue)
    home.update({acd: home[raw] for raw, acd in m.agents.items() if raw in home and acd not in home})
    default = options.service or m.default_service
    if default is not None and not home and not facts.home:  # (every agent's is the default)
        return pl.lit(default, pl.String).alias("service_id")
    agents = rows["agent_id"].unique().sort().to_list()
    queue = {a: home.get(a) or facts.home.get(a) or default for a in agents}
    missing = [a for a, q in queue.items() if q is None]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ConfigError(
            f"no queue for agent(s) {shown}: the input gives none; pass --service ID, or set "
            "mapping.default_service or mapping.home_queue in the config"
        )
    return pl.col("agent_id").replace_strict(queue, return_dtype=pl.String).alias("service_id")
