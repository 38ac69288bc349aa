"""Canonical frames: the one vocabulary every source produces and every renderer consumes.

All instants are timezone-aware UTC (`Datetime("us", "UTC")`), all durations are float seconds,
all IDs are strings (leading zeros kept). Sources check their output against these schemas at the
boundary (`check`), so nothing downstream re-checks types.

Interval frames have required columns and optional ones: an optional column is present only when
the input carried it, and then it is rendered after the required columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from gisgate.errors import InputError, Problem

UTC_TIME = pl.Datetime("us", "UTC")
F = pl.Float64
S = pl.String


@dataclass(frozen=True)
class Column:
    """A canonical column and, for interval frames, the GIS column it becomes."""

    name: str
    dtype: pl.DataType
    gis: str = ""  # GIS column name ("" when the column never appears in a GIS file)
    kind: str = "seconds"  # id | count | seconds | percent | time  (decides number formatting)
    required: bool = True


def _schema(columns: list[Column]) -> dict[str, pl.DataType]:
    return {c.name: c.dtype for c in columns}


# --- QUEUE_INTERVALS: one row per queue x interval  (GIS ServiceHistorical.SERVICE, domain §1.10)
QUEUE_COLUMNS: list[Column] = [
    Column("interval_start", UTC_TIME, "", "time"),
    Column("service_id", S, "acdServiceId", "id"),
    Column("offered", F, "contactsOffered", "count"),
    Column("handled", F, "contactsHandled", "count"),
    Column("answered", F, "contactsAnswered", "count"),
    Column("abandoned", F, "contactsAbandoned", "count"),
    Column("talk_s", F, "totalTalkSeconds"),
    Column("hold_s", F, "totalHoldSeconds"),
    Column("acw_s", F, "totalAfterContactWorkSeconds"),
    Column("answer_delay_s", F, "totalAnswerDelaySeconds"),
    Column("service_level_pct", F, "serviceLevelPercent", "percent"),
    Column("blocked", F, "contactsBlocked", "count", required=False),
    Column("sl_threshold_s", F, "serviceLevelSeconds", required=False),
    Column("max_in_queue", F, "contactsInQueue", "count", required=False),
]

# --- AGENT_INTERVALS: one row per agent x queue x interval  (GIS AgentProductivity.AGENT, §1.9)
AGENT_COLUMNS: list[Column] = [
    Column("interval_start", UTC_TIME, "", "time"),
    Column("agent_id", S, "acdAgentId", "id"),
    Column("service_id", S, "acdServiceId", "id"),
    Column("handled", F, "contactsHandled", "count"),
    Column("talk_s", F, "totalTalkSeconds"),
    Column("hold_s", F, "totalHoldSeconds"),
    Column("acw_s", F, "totalAfterContactWorkSeconds"),
    Column("period_handle_s", F, "totalPeriodHandleTimeSeconds"),
    Column("ready_s", F, "totalUnproratedReadyWaitingSeconds"),
    Column("not_ready_s", F, "totalUnproratedNotReadyBusySeconds"),
    Column("in_session_s", F, "totalUnproratedInSessionSeconds"),
    Column("transferred_out", F, "contactsTransferredOut", "count", required=False),
    Column("transferred_in", F, "contactsTransferredIn", "count", required=False),
    Column("external_in", F, "contactsExternalIn", "count", required=False),
    Column("external_out", F, "contactsExternalOut", "count", required=False),
    Column("reserved_s", F, "totalReservedSeconds", required=False),
    Column("prorated_ready_s", F, "totalProratedReadyWaitingSeconds", required=False),
    Column("prorated_not_ready_s", F, "totalProratedNotReadyBusySeconds", required=False),
    Column("answered", F, "contactsAnswered", "count", required=False),
    Column("answer_delay_s", F, "totalAnswerDelaySeconds", required=False),
]

# The agent-level values that repeat on every row of one agent in one interval (§1.9).
UNPRORATED = ["ready_s", "not_ready_s", "in_session_s"]

# --- STATE_EVENTS: one row per agent state change
STATES = ["LOGOUT", "NOT_READY", "READY", "TALKING", "WORK_NOT_READY", "WORK_READY", "HOLD", "RESERVED"]
STATE_COLUMNS: list[Column] = [
    Column("agent_id", S, kind="id"),
    Column("at", UTC_TIME, kind="time"),
    Column("state", S, kind="id"),  # one of STATES
    Column("reason", S, kind="id"),  # reason code or label; null when none
    Column("raw_state", S, kind="id"),  # the platform's own state text, for reports and warnings
]

# --- CONTACTS: one row per offered/handled contact
CONTACT_COLUMNS: list[Column] = [
    Column("contact_id", S, kind="id"),
    Column("service_id", S, kind="id"),
    Column("agent_id", S, kind="id"),  # null when never answered
    Column("direction", S, kind="id"),  # "in" | "out"
    Column("arrived_at", UTC_TIME, kind="time"),
    Column("answered_at", UTC_TIME, kind="time"),  # null when not answered
    Column("ended_at", UTC_TIME, kind="time"),
    Column("outcome", S, kind="id"),  # answered | abandoned | short_abandoned | outbound
    Column("wait_s", F),
    Column("talk_s", F),
    Column("hold_s", F),
    Column("acw_s", F),
    Column("transferred", pl.Boolean, kind="count"),
]

QUEUE_INTERVALS = _schema(QUEUE_COLUMNS)
AGENT_INTERVALS = _schema(AGENT_COLUMNS)
STATE_EVENTS = _schema(STATE_COLUMNS)
CONTACTS = _schema(CONTACT_COLUMNS)

FRAMES: dict[str, list[Column]] = {
    "QUEUE_INTERVALS": QUEUE_COLUMNS,
    "AGENT_INTERVALS": AGENT_COLUMNS,
    "STATE_EVENTS": STATE_COLUMNS,
    "CONTACTS": CONTACT_COLUMNS,
}


def gis_columns(columns: list[Column]) -> dict[str, Column]:
    """GIS column name -> canonical column, for the columns that appear in GIS files."""
    return {c.gis: c for c in columns if c.gis}


def present(frame: pl.DataFrame, columns: list[Column]) -> list[Column]:
    """The columns of `columns` that `frame` has, in canonical order (required first)."""
    return [c for c in columns if c.name in frame.columns]


def check(frame: pl.DataFrame, frame_name: str, source: str) -> pl.DataFrame:
    """Assert `frame` fits the canonical schema `frame_name`; return it with columns in order.

    Called at every source's boundary. A mismatch is a bug in the adapter (or an input the adapter
    let through), so it is reported as an InputError naming the source and the column.
    """
    columns = FRAMES[frame_name]
    problems = []
    for c in columns:
        if c.name not in frame.columns:
            if c.required:
                problems.append(Problem(source, 0, c.name, f"missing from {frame_name}"))
        elif frame.schema[c.name] != c.dtype:
            problems.append(
                Problem(source, 0, c.name, f"is {frame.schema[c.name]}, {frame_name} needs {c.dtype}")
            )
    known = {c.name for c in columns}
    problems += [Problem(source, 0, n, f"not a {frame_name} column") for n in frame.columns if n not in known]
    if problems:
        raise InputError(problems)
    return frame.select([c.name for c in columns if c.name in frame.columns])


def floor_local(utc: pl.Expr, tz: str, minutes: int) -> pl.Expr:
    """The UTC start of the local-clock interval containing each instant.

    Subtracting the local minutes past the boundary (rather than flooring the local wall-clock
    time and converting back) keeps the repeated fall-back hour unambiguous: the offset is the
    same for the instant and its interval start, because DST changes happen on the hour (and on
    the half hour in Australia/Lord_Howe), which is always an interval boundary.
    """
    local = utc.dt.convert_time_zone(tz)
    past = (
        (local.dt.minute().cast(pl.Int64) % minutes) * 60_000_000
        + local.dt.second().cast(pl.Int64) * 1_000_000
        + local.dt.microsecond().cast(pl.Int64)
    )
    return utc - pl.duration(microseconds=past)


@dataclass
class Batch:
    """What a source hands to the pipeline: canonical frames (any may be None) and warnings."""

    queue_intervals: pl.DataFrame | None = None
    agent_intervals: pl.DataFrame | None = None
    state_events: pl.DataFrame | None = None
    contacts: pl.DataFrame | None = None
    # Granularity (minutes) of the interval frames when the input says so; None = infer.
    source_interval: int | None = None
    # First and last instant the input covers (event sources), for clipping open spans.
    covered_from: object | None = None
    covered_until: object | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Output:
    """One produced file: its exact name, its bytes, and what it is."""

    name: str
    data: bytes
    kind: str  # gis-agent | gis-service | whit | contact | contact-media | textcontact | cwfm | rtstate
    interval_start: object | None = None  # UTC datetime of the interval (GIS files)
