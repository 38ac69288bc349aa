"""What a derivation decides from all of the data at once, not from the rows of one interval.

A one-shot conversion takes these facts from its own batch (`facts_of`). The gateway's stream
re-derives a few intervals at a time from the rows that can touch them, and passes the facts of
the whole stream instead, so that every interval comes out as one conversion of everything would
write it:

    until       where open state spans end: the latest event (or --until)
    covered     the first and last instant of the data: SERVICE files (zero rows included) span it
    services    every queue a SERVICE file has a row for: queues of inbound contacts, and the mapping's
    events      state events were given (AGENT in-session columns)
    reserved    some agent was Reserved (the AGENT files then carry the Reserved column)
    contacts    contacts were given (AGENT transfer columns; Not Ready is what handling leaves)
    handled     some contact was handled by an agent (AGENT rows come from contacts and states)
    home        each agent's home queue: the queue of most of its contacts
    quarter     some interval row starts at :15 or :45 (the input is 15-minute data)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError
from gisgate.model import Batch
from gisgate.transform import clock
from gisgate.transform.contacts import HANDLED, queue_services


@dataclass(frozen=True)
class Facts:
    until: datetime | None = None
    covered: tuple[datetime, datetime] | None = None
    services: tuple[str, ...] = ()
    events: bool = False
    reserved: bool = False
    contacts: bool = False
    handled: bool = False
    home: dict[str, str] = field(default_factory=dict)
    quarter: bool = False

    def union(self, other: Facts) -> Facts:
        """The facts of two sets of data together (`home` is taken from `other`: the caller counts it)."""
        covered = [c for c in (self.covered, other.covered) if c is not None]
        times = [t for t in (self.until, other.until) if t is not None]
        return Facts(
            until=max(times) if times else None,
            covered=(min(c[0] for c in covered), max(c[1] for c in covered)) if covered else None,
            services=tuple(sorted(set(self.services) | set(other.services))),
            events=self.events or other.events,
            reserved=self.reserved or other.reserved,
            contacts=self.contacts or other.contacts,
            handled=self.handled or other.handled,
            home=other.home,
            quarter=self.quarter or other.quarter,
        )


def facts_of(batch: Batch, options: ConvertOptions, part: bool = False) -> Facts:
    """The facts of one batch, as a one-shot conversion derives it. A `part` of a stream is not at the
    stream's end: its latest events count for the covered range too."""
    contacts, events = batch.contacts, batch.state_events
    has_events = events is not None and not events.is_empty()
    until = export_end(batch, options) if has_events else None
    return Facts(
        until=until,
        covered=covered_by(contacts if contacts is not None else pl.DataFrame(schema=model.CONTACTS),
                           events if has_events else None, until, part) if contacts is not None or part else None,
        services=tuple(sorted(queue_services(contacts) | set(options.mapping.services.values())))
        if contacts is not None else (),
        events=has_events,
        reserved=has_events and bool((events["state"] == "RESERVED").any()),
        contacts=contacts is not None,
        handled=contacts is not None and handled_by_agents(contacts),
        home=home_queues(contacts) if contacts is not None else {},
        quarter=clock.infer_source_interval([batch.queue_intervals, batch.agent_intervals], options.tz) == 15,
    )


def handled_by_agents(contacts: pl.DataFrame) -> bool:
    return bool(contacts.select((pl.col("agent_id").is_not_null() & pl.col("outcome").is_in(HANDLED)).any()).item())


def home_queues(contacts: pl.DataFrame) -> dict[str, str]:
    """Each agent's most frequent queue among its contacts (ties: the smallest queue id)."""
    top = (
        contacts.filter(pl.col("agent_id").is_not_null() & pl.col("service_id").is_not_null())
        .group_by("agent_id", "service_id")
        .len()
        .sort(["agent_id", "len", "service_id"], descending=[False, True, False])
        .group_by("agent_id", maintain_order=True)
        .first()
    )
    return dict(zip(top["agent_id"].to_list(), top["service_id"].to_list(), strict=True))


def covered_by(contacts: pl.DataFrame, events: pl.DataFrame | None, until: datetime | None, part: bool = False):
    """First and last instant the inputs cover: contacts' times, state events up to the export end
    (exclusive), so SERVICE rows exist for every interval that has AGENT rows. When the events are
    only a `part` of a stream, its latest ones still count for the first instant."""
    if contacts.is_empty() and events is None:
        return None
    times = pl.concat([contacts.select(pl.col(c).alias("t")) for c in ("arrived_at", "answered_at", "ended_at")])
    if events is not None:
        before = events.filter(pl.col("at") < until).select(pl.col("at").alias("t"))
        first = pl.concat([times, events.select(pl.col("at").alias("t")) if part else before])["t"].drop_nulls()
        times = pl.concat([times, before])
    else:
        first = times["t"].drop_nulls()
    t = times["t"].drop_nulls()
    if first.is_empty():
        return None
    last = t.max() if not t.is_empty() else None
    if until is not None:
        last = until - timedelta(microseconds=1) if last is None else max(last, until - timedelta(microseconds=1))
    return first.min(), last


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
