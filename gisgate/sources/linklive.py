"""LinkLive (Journey Engine) exports (domain-spec §5.3): `queueEngagementIntervals` and `userStates`,
as JSON (`{"organizationId", "<endpoint>": [...]}`, a bare array, NDJSON) or CSV with the same fields.

Times are epoch seconds or milliseconds (> 10¹¹ ⇒ ms) or ISO strings; `totalHandleTimeMs` is in
milliseconds. A user state comes as three fields (`presenceStatus`, `activity`,
`allocationStatus`) or as one composite string `presence_activity_allocation`, parsed by known
tokens so that a malformed allocation suffix (`partially_allocatedAvailable`) still maps.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.sources import _platform as P
from gisgate.sources._io import Head

INTERVAL_KEYS = {"queueId", "enqueuedCount"}
STATE_KEYS = {"userId", "startTimestamp"}
COMPOSITE = ["status", "agentStatus", "userStatus", "state"]  # accepted names of the composite field
KNOWN_PRESENCE = ["online", "offline", "busy", "away"]


def kind(keys: set[str] | frozenset[str]) -> str | None:
    if INTERVAL_KEYS <= keys:
        return "intervals"
    if STATE_KEYS <= keys:
        return "states"
    return None


def detect(head: Head) -> bool:
    return bool({"queueEngagementIntervals", "userStates"} & head.wrapper) or kind(head.keys) is not None


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    """Queue engagement intervals → QUEUE_INTERVALS (15-minute); user states → STATE_EVENTS."""
    intervals, states, warnings = [], [], []
    for k, frame, file, _ in P.classified(paths, kind, "LinkLive queueEngagementIntervals or userStates records",
                                          warnings):
        if k == "intervals":
            intervals.append(_intervals(frame, file, options))
        else:
            states.append(_states(frame, file, options))
    batch = model.Batch(warnings=warnings)
    if intervals:
        batch.queue_intervals, batch.source_interval = _merge_intervals(pl.concat(intervals), warnings), 15
    if states:
        events, w = P.map_states(pl.concat(states), "_key", _table(options), "linklive userStates")
        warnings += w
        batch.state_events = model.check(
            events.select(list(model.STATE_EVENTS)), "STATE_EVENTS", "linklive"
        )
    return batch


def _intervals(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    P.missing_columns(f, ["intervalStart", "abandonedCount", "totalHandleTimeMs"], file, "queue engagement interval")
    f = P.with_times(f, {"interval_start": pl.col("intervalStart")}, o.naive_tz)
    f = f.with_columns(
        pl.col("interval_start"),
        P.map_ids(pl.col("queueId"), o.mapping.services).alias("service_id"),
        P.seconds(pl.col("enqueuedCount")).alias("offered"),
        P.seconds(pl.col("abandonedCount")).alias("abandoned"),
        P.seconds(pl.col("totalHandleTimeMs"), 0.001).alias("talk_s"),
    )
    P.raise_problems(
        [
            P.required(f, ["queueId", "intervalStart", "enqueuedCount", "abandonedCount", "totalHandleTimeMs"]),
            P.check_parsed(f, {"interval_start": "intervalStart"}, "a time"),
            P.check_parsed(
                f,
                {"offered": "enqueuedCount", "abandoned": "abandonedCount", "talk_s": "totalHandleTimeMs"},
                "a non-negative number",
            ),
            P.bad_ids(f, ["service_id"]),
        ],
        file,
    )
    return P.queue_rows(f)


def _merge_intervals(f: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """Windows polled twice: identical rows collapse; differing ones keep the last poll (warned)."""
    f = f.unique(maintain_order=True)
    n = f.height
    f = f.unique(["interval_start", "service_id"], keep="last", maintain_order=True)
    if f.height < n:
        warnings.append(
            f"linklive: {n - f.height} queue interval(s) given twice with different values; the last one is used"
        )
    return model.check(f.sort("interval_start", "service_id"), "QUEUE_INTERVALS", "linklive")


def _states(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    parts = ["presenceStatus", "activity", "allocationStatus"]
    composite = next((c for c in COMPOSITE if c in f.columns), None)
    if all(c in f.columns for c in parts):
        raw = pl.concat_str([pl.col(c).fill_null("") for c in parts], separator="_")
        if composite:
            raw = pl.when(pl.col("presenceStatus").is_null()).then(pl.col(composite)).otherwise(raw)
    elif composite:
        raw = pl.col(composite)
    else:
        raise InputError(
            [
                Problem(
                    file,
                    1,
                    "presenceStatus",
                    "missing: a user state needs presenceStatus, "
                    "activity and allocationStatus, or one composite status field",
                )
            ]
        )
    f = P.with_times(f, {"at": pl.col("startTimestamp")}, o.naive_tz)
    f = f.with_columns(
        P.map_ids(pl.col("userId"), o.mapping.agents).alias("agent_id"),
        pl.col("at"),
        raw.alias("raw_state"),
    )
    P.raise_problems(
        [
            P.required(f.with_columns(pl.col("raw_state").alias("status")), ["userId", "startTimestamp", "status"]),
            P.check_parsed(f, {"at": "startTimestamp"}, "a time"),
            P.bad_ids(f, ["agent_id"]),
        ],
        file,
    )
    low = pl.col("raw_state").str.to_lowercase()
    presence = low.str.extract(r"^([a-z]+)")
    alloc = low.str.contains(r"(partially|fully)_?allocated")
    derived = (
        pl.when(presence == "offline")
        .then(pl.lit("LOGOUT"))
        .when((presence == "online") & alloc)
        .then(pl.lit("TALKING"))
        .when((presence == "online") & low.str.contains(r"^online_available_not_?allocated"))
        .then(pl.lit("READY"))
        .when((presence == "online") & low.str.contains(r"^online_unavailable_not_?allocated"))
        .then(pl.lit("NOT_READY"))
        .when(presence.is_in(["busy", "away"]))
        .then(pl.lit("NOT_READY"))
    )
    # `_key` is what the state table matches: the configured override for the composite, else the
    # derived state (known presences), else the raw text (unknown → Not Ready, warned).
    return f.select(
        "agent_id",
        "at",
        "raw_state",
        pl.when(P.state_key(pl.col("raw_state")).is_in(list(P.state_table("linklive", o.mapping))))
        .then(pl.col("raw_state"))
        .otherwise(pl.coalesce(derived, pl.col("raw_state")))
        .alias("_key"),
        # Reason: the presence text for busy/away, the raw status when it is not understood.
        pl.when(presence.is_in(["busy", "away"]))
        .then(presence)
        .when(derived.is_null())
        .then(pl.col("raw_state"))
        .alias("reason"),
    )


def _table(o: ConvertOptions) -> dict[str, str]:
    """Derived states map to themselves; `mapping.states` may name composite strings."""
    table = {s.lower().replace("_", ""): s for s in model.STATES}
    return table | P.state_table("linklive", o.mapping)
