"""`--to cwfm`: CommunityWFM Cloud Connect JSON bodies (domain-spec §4.2.3–4.2.5).

    cwfm-callvolume-NNNN.json        {"AccountId", "CallVolumeUpdates": [...]}       from queue intervals
    cwfm-agentactivity-NNNN.json     {"AccountId", "AgentUpdates": [...]}            from state events
    cwfm-people-NNNN.json            {"AccountId", "AgentInserts": [...]}            agents seen
    cwfm-collectionpoints-NNNN.json  {"AccountId", "CollectionPointInserts": [...]}  queues seen

At most `batch_size` records per body; a call-volume body never splits an interval unless the
interval alone is larger. Numbers are JSON strings, as every Cloud Connect example sends them;
`Interval` and `EventTime` are UTC `yyyy-MM-dd HH:mm:ss`. `TalkTime` is talk plus wrap-up;
`ContactsNotHandled` is every offered contact not answered. `Activity` uses the reverse table of
§5.6 (LoggedOut, NotReady, Ready, OnCall, Wrapup, Hold); reason codes are cut to 10 characters.
The inputs carry no person names, so People rows use the agent ID as first name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError
from gisgate.model import Batch, Output, strings
from gisgate.render._json import UTC_TEXT, chunks, number_text, objects

ACTIVITY = {
    "LOGOUT": "LoggedOut",
    "NOT_READY": "NotReady",
    "READY": "Ready",
    "TALKING": "OnCall",
    "WORK_NOT_READY": "Wrapup",
    "WORK_READY": "Wrapup",
    "HOLD": "Hold",
    "RESERVED": "NotReady",
}


def count(batch: Batch, options: ConvertOptions, batch_size: int = 500) -> int:
    """About how many bodies (for a progress bar): call volume, activity, people and collection points."""
    rows = sum(f.height for f in (batch.queue_intervals, batch.state_events) if f is not None)
    return 2 + -(-rows // batch_size)


def missing(batch: Batch) -> str | None:
    if batch.queue_intervals is None and batch.state_events is None:
        return "Cloud Connect bodies need queue intervals or agent state events; the input has neither"
    return None


def warnings(batch: Batch) -> list[str]:
    return []


def render(batch: Batch, options: ConvertOptions, batch_size: int = 500) -> Iterator[Output]:
    """Yield the Cloud Connect bodies the batch supports, in a fixed order with numbered names."""
    qi, events = batch.queue_intervals, batch.state_events
    if qi is None and events is None:
        raise ConfigError("--to cwfm needs queue intervals or agent state events; this input has neither")
    account = options.cwfm_account_id
    if qi is not None and not qi.is_empty():
        q = qi.sort("interval_start", "service_id")
        yield from _bodies("callvolume", "CallVolumeUpdates", account, _call_volume(q), q["interval_start"], batch_size)
        yield from _bodies("collectionpoints", "CollectionPointInserts", account, _points(q, options), None, batch_size)
    if events is not None and not events.is_empty():
        yield from render_events(events, options, "", batch_size)


def render_intervals(batch: Batch, options: ConvertOptions, batch_size: int = 500) -> Iterator[Output]:
    """A stream's interval bodies: each interval's call volume in one body, named by its UTC start
    (`cwfm-callvolume-YYYYMMDDHHMM.json`; the target cuts a body into requests of `batch_size`), then
    the collection points of them all, named by the first. Agent activity goes as it arrives
    (`render_events`)."""
    qi = batch.queue_intervals
    if qi is None or qi.is_empty():
        return
    account = options.cwfm_account_id
    q = qi.sort("interval_start", "service_id")
    stamps = q["interval_start"].dt.strftime("%Y%m%d%H%M")
    objects_ = _call_volume(q)
    for (start,), part in q.with_row_index("_i").partition_by("interval_start", as_dict=True,
                                                                maintain_order=True).items():
        head = '{"AccountId":' + json.dumps(account) + ',"CallVolumeUpdates":['
        body = head + ",".join(objects_.gather(part["_i"]).to_list()) + "]}\n"
        yield Output(f"cwfm-callvolume-{stamps[int(part['_i'][0])]}.json", body.encode(), "cwfm", start)
    yield from _bodies(f"collectionpoints-{stamps[0]}", "CollectionPointInserts", account, _points(q, options),
                       None, batch_size)


def render_events(events: pl.DataFrame, options: ConvertOptions, tag: str = "",
                  batch_size: int = 500) -> Iterator[Output]:
    """AgentActivity bodies of `events` (each distinct change once) and People bodies of their agents;
    `tag` goes into the names (`cwfm-agentactivity-TAG-NNNN.json`) when a stream sends them in pieces."""
    account = options.cwfm_account_id
    tag = f"-{tag}" if tag else ""
    e = (strings(events).unique(["agent_id", "at", "state", "reason"])
         .sort("at", "agent_id", "state", "reason", nulls_last=True))
    rows = objects(
        e,
        [
            pl.col("agent_id").alias("AgentId"),
            pl.col("at").dt.strftime(UTC_TEXT).alias("EventTime"),
            pl.col("state").replace_strict(ACTIVITY).alias("Activity"),
        ],
        {"ReasonCode": pl.col("reason").str.strip_chars().str.slice(0, 10)},
    )
    yield from _bodies(f"agentactivity{tag}", "AgentUpdates", account, rows, None, batch_size)
    people = e.select(pl.col("agent_id").unique().sort())
    rows = objects(
        people,
        [
            pl.col("agent_id").alias("AgentId"),
            pl.col("agent_id").str.slice(0, 20).alias("FirstName"),
            pl.lit("").alias("LastName"),
        ],
    )
    yield from _bodies(f"people{tag}", "AgentInserts", account, rows, None, batch_size)


class Body(NamedTuple):
    """A bulk body read back: its AccountId, the key of its list (`CallVolumeUpdates`, ...), its records."""

    account: str
    key: str
    records: list[dict]


def read_body(out: Output) -> Body:
    body = json.loads(out.data)
    key = next(k for k in body if k != "AccountId")
    return Body(body["AccountId"], key, body[key])


def with_records(out: Output, body: Body, records: list[dict]) -> Output:
    """The same body (`read_body(out)`) with only `records` in its list."""
    data = json.dumps({"AccountId": body.account, body.key: records}, ensure_ascii=False, separators=(",", ":"))
    return Output(out.name, (data + "\n").encode(), out.kind, out.interval_start)


def _call_volume(q: pl.DataFrame) -> pl.Series:
    return objects(
        q,
        [
            pl.lit("false").alias("UpdateExisting"),
            pl.col("service_id").alias("CollectionPoint"),
            pl.col("interval_start").dt.strftime(UTC_TEXT).alias("Interval"),
            number_text(pl.col("offered")).alias("ContactsOffered"),
            number_text((pl.col("offered") - pl.col("answered")).clip(0.0)).alias("ContactsNotHandled"),
            number_text(pl.col("talk_s") + pl.col("acw_s")).alias("TalkTime"),
            number_text(pl.col("hold_s")).alias("HoldTime"),
            number_text(pl.col("service_level_pct")).alias("ServiceLevelPct"),
        ],
    )


def _points(q: pl.DataFrame, options: ConvertOptions) -> pl.Series:
    points = q.select(pl.col("service_id").unique().sort())
    return objects(
        points,
        [
            pl.col("service_id").alias("CollectionPointId"),
            pl.col("service_id").replace(options.mapping.service_names).str.slice(0, 255).alias("Description"),
        ],
    )


def _bodies(name: str, key: str, account: str, rows: pl.Series, groups, size: int) -> Iterator[Output]:
    head = '{"AccountId":' + json.dumps(account) + ',"' + key + '":['
    for n, body in enumerate(chunks(rows, groups, size), start=1):
        yield Output(f"cwfm-{name}-{n:04d}.json", (head + body + "]}\n").encode(), "cwfm")
