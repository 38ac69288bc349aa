"""CommunityWFM Cloud Connect bodies as input (domain-spec §4.2.3, §5.5): `CallVolumeUpdates`,
`AgentUpdates`, `AgentInserts`, `CollectionPointInserts`, as JSON bodies or CSV with the same columns.

Numbers may be JSON strings; dates are `M/D/YYYY H:mm:ss`, `yyyy-MM-dd HH:mm[:ss]` or ISO-8601,
UTC unless `naive_tz` says otherwise. `ContactsNotHandled` is a superset of abandoned; it is taken
as abandoned and handled = offered − not handled. `TalkTime` includes wrap-up, so ACW is 0.
`Activity` is free text matched case-insensitively (LoggedOut, NotReady, Ready, OnCall, Wrapup, Hold).
People and collection-point bodies carry no interval data; they are accepted and ignored.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import InputError
from gisgate.sources import _platform as P
from gisgate.sources._io import LINE, Head, scan_csv

KINDS = {
    "CallVolumeUpdates": {"CollectionPoint", "Interval", "ContactsOffered"},
    "AgentUpdates": {"AgentId", "EventTime", "Activity"},
    "AgentInserts": {"AgentId", "FirstName"},
    "CollectionPointInserts": {"CollectionPointId", "Description"},
}


def kind(keys: set[str] | frozenset[str]) -> str | None:
    return next((k for k, cols in KINDS.items() if cols <= keys), None)


def detect(head: Head) -> bool:
    return bool(set(KINDS) & head.wrapper) or kind(head.keys) is not None


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    volumes, activity, warnings = [], [], []
    for path in paths:
        lean = _activity_scanned(path, options)
        if lean is not None:
            if lean.height:  # (a table without records is skipped, as below)
                activity.append(lean)
            continue
        frames, _, w = P.tables(path)
        warnings += w
        for key, frame in frames.items():
            if frame.height == 0:
                continue
            k = key if key in KINDS else kind(set(frame.columns))
            if k is None:
                raise InputError(
                    "not a Cloud Connect CallVolumeUpdates, AgentUpdates, AgentInserts or "
                    f"CollectionPointInserts body (fields {sorted(frame.columns)[:8]})",
                    str(path),
                )
            if k == "CallVolumeUpdates":
                volumes.append(_volumes(frame, str(path), options))
            elif k == "AgentUpdates":
                activity.append(_activity(frame, str(path), options))
            else:
                warnings.append(f"{path}: {k} carry no interval data; ignored")
    batch = model.Batch(warnings=warnings)
    if volumes:
        v = pl.concat(volumes).unique(["interval_start", "service_id"], keep="last", maintain_order=True)
        batch.queue_intervals = model.check(v.sort("interval_start", "service_id"), "QUEUE_INTERVALS", "cwfm")
        batch.source_interval = 15
        if (v["abandoned"] > 0).any():
            warnings.append("cwfm: ContactsNotHandled counted as abandoned (it also holds other unhandled contacts)")
    if activity:
        events, w = P.map_states(
            pl.concat(activity, how="vertical_relaxed"), "raw_state", P.state_table("cwfm", options.mapping),
            "cwfm AgentUpdates"
        )
        del activity
        warnings += w
        events = events.with_columns(
            pl.when(pl.col("state").is_in(["NOT_READY", "LOGOUT"])).then(pl.col("reason")).alias("reason")
        )
        if any(isinstance(t, pl.Categorical) for t in events.schema.dtypes()):  # a streamed CSV's (model.COMPACT)
            events = events.with_columns(pl.col("state", "reason", "raw_state", "agent_id").cast(pl.Categorical))
        batch.state_events = model.check(
            events.select(list(model.STATE_EVENTS)), "STATE_EVENTS", "cwfm"
        )
    return batch


def _volumes(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    P.missing_columns(f, ["ContactsNotHandled", "TalkTime"], file, "CallVolumeUpdates record")
    nums = {
        "offered": "ContactsOffered",
        "abandoned": "ContactsNotHandled",
        "talk_s": "TalkTime",
        "hold_s": "HoldTime",
        "service_level_pct": "ServiceLevelPct",
    }
    f = P.with_times(f, {"interval_start": pl.col("Interval")}, o.naive_tz)
    f = f.with_columns(
        pl.col("interval_start"),
        P.map_ids(pl.col("CollectionPoint"), o.mapping.services).alias("service_id"),
        *[(P.seconds(pl.col(src)) if src in f.columns else pl.lit(0.0)).alias(dst) for dst, src in nums.items()],
    )
    P.raise_problems(
        [
            P.required(f, ["CollectionPoint", "Interval", "ContactsOffered", "ContactsNotHandled", "TalkTime"]),
            P.check_parsed(f, {"interval_start": "Interval"}, "a date and time"),
            P.check_parsed(f, {d: s for d, s in nums.items() if s in f.columns}, "a non-negative number"),
            P.bad_ids(f, ["service_id"]),
        ],
        file,
    )
    return P.queue_rows(f)


def _activity_scanned(path: Path, o: ConvertOptions) -> pl.DataFrame | None:
    """An AgentUpdates CSV as `_activity` reads it, but streamed: only compact columns are kept (texts
    as categoricals, the time parsed), so the file's texts are never all in memory. None when the
    file is no plain AgentUpdates CSV (see `_io.scan_csv`, `P.scanned_times`): then it is read as text."""
    scanned = scan_csv(path)
    if scanned is None:
        return None
    lf, first = scanned
    names = lf.collect_schema().names()
    if kind(set(names)) != "AgentUpdates":
        return None
    texts = [c for c in ("AgentId", "Activity", "ReasonCode") if c in names]
    try:
        lf = lf.select(LINE, *[pl.col(c).cast(pl.Categorical) for c in texts], "EventTime")
        f = P.scanned_time(lf, "at", "EventTime", o.naive_tz, first.get("EventTime")).collect(engine="streaming")
    except pl.exceptions.PolarsError:  # not UTF-8 further on, a ragged line...: read_csv copes or says where
        return None
    f = P.scanned_times(f, "at", "EventTime", o.naive_tz, lf)
    if f is None:
        return None
    # (EventTime now holds only the texts the fast path did not read: empty where `at` is null too)
    return _activity(P.nulls(f), str(path), o, {"EventTime": pl.col("at").is_null() & pl.col("EventTime").is_null()})


def _activity(f: pl.DataFrame, file: str, o: ConvertOptions, empty: dict[str, pl.Expr] | None = None) -> pl.DataFrame:
    if empty is None:
        f = P.with_times(f, {"at": pl.col("EventTime")}, o.naive_tz)
    f = f.with_columns(
        P.map_ids(pl.col("AgentId"), o.mapping.agents).alias("agent_id"),
        pl.col("at"),
        pl.col("Activity").alias("raw_state"),
        (pl.col("ReasonCode") if "ReasonCode" in f.columns else pl.lit(None, pl.String)).alias("reason"),
    )
    P.raise_problems(
        [
            P.required(f, ["AgentId", "EventTime", "Activity"], empty),
            P.check_parsed(f, {"at": "EventTime"}, "a date and time"),
            P.bad_ids(f, ["agent_id"]),
        ],
        file,
    )
    return f.select("agent_id", "at", "raw_state", "reason")
