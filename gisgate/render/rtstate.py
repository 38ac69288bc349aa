"""`--to rtstate`: Webex WFO real-time agent-state JSON arrays (domain-spec §4.1.6).

Each file is one request body: an array of at most `batch_size` objects
`{"acdAgentId": "12345", "gisStateIdentifier": "3", "timestamp": 1730611200000, "reasonCode": 7}`,
ordered by time (then agent), exact duplicates dropped. An event that repeats the agent's previous
state (same code, same reason) is no state change and is dropped too: one change, one event (e.g. a
Talkdesk `Offline` status followed by the logout at that status's end). `gisStateIdentifier` is a string code,
`timestamp` epoch milliseconds UTC, `reasonCode` a number when numeric (1–65535), else the text,
and only on Logout and Not Ready events that have one.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError
from gisgate.model import Batch, Output, strings
from gisgate.render._json import chunks, objects

GIS_CODES = {
    "LOGOUT": "1",
    "NOT_READY": "2",
    "READY": "3",
    "TALKING": "4",
    "WORK_NOT_READY": "5",
    "WORK_READY": "6",
    "HOLD": "10",
    "RESERVED": "2",
}  # GIS has no Reserved state


def count(batch: Batch, options: ConvertOptions, batch_size: int = 500) -> int:
    return -(-batch.state_events.height // batch_size)


def missing(batch: Batch) -> str | None:
    return "real-time states need agent state events; the input has none" if batch.state_events is None else None


def warnings(batch: Batch) -> list[str]:
    return []


def render(batch: Batch, options: ConvertOptions, batch_size: int = 500) -> Iterator[Output]:
    """Yield `rtstate-0001.json`, `rtstate-0002.json`, ... from `batch.state_events`."""
    events = strings(batch.state_events)
    if events is None:
        raise ConfigError("--to rtstate needs agent state events; this input has none (use --to gis)")
    e = (
        events.unique(["agent_id", "at", "state", "reason"])
        .sort("at", "agent_id", "state", "reason", nulls_last=True)
        .with_columns(pl.col("reason").str.strip_chars())
    )
    code = pl.col("state").replace_strict(GIS_CODES)
    numeric = pl.col("reason").cast(pl.Int64, strict=False)
    may_reason = code.is_in(["1", "2"])
    shown = pl.struct(code.alias("code"), pl.when(may_reason).then(pl.col("reason")).alias("reason"))
    e = e.filter(shown.ne_missing(shown.shift(1).over("agent_id")))  # in time order within each agent
    rows = objects(
        e,
        [
            pl.col("agent_id").alias("acdAgentId"),
            code.alias("gisStateIdentifier"),
            (pl.col("at").dt.epoch("us") // 1000).alias("timestamp"),
        ],
        {
            "reasonCode": pl.when(may_reason & numeric.is_between(1, 65535)).then(numeric),
            "reasonText": pl.when(may_reason & ~numeric.is_between(1, 65535).fill_null(False)).then(pl.col("reason")),
        },
    ).str.replace('"reasonText":', '"reasonCode":', literal=True)
    for n, body in enumerate(chunks(rows, None, batch_size), start=1):
        yield Output(f"rtstate-{n:04d}.json", f"[{body}]\n".encode(), "rtstate")
