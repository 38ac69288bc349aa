"""Talkdesk Explore reports (domain-spec §5.2): `contacts`, `calls` and `user_status`, as CSV or as
JSON (`{"type", "version", "total", "entries": [...]}`), several at once.

Naive datetimes are in `naive_tz` (request the jobs in UTC). Ring groups become `acdServiceId`
through `mapping.services`; `user_id` through `mapping.agents`. User-status rows duplicated at
month, team and campaign changes are dropped, and adjacent rows of one user and status (end =
next start) are merged; a gap between a status's end and the next start is time logged out.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.sources import _platform as P
from gisgate.sources._io import Head

KINDS = {
    "user_status": {"user_id", "status_label", "status_start_at"},
    "contacts": {"contact_id", "contact_type", "started_at", "finished_at"},
    "calls": {"call_id", "type", "start_at", "end_at"},
}
CALL_OUTCOMES = {
    "inbound": "answered",
    "outbound": "outbound",
    "outboundmissed": "outbound",
    "missed": "missed",
    "voicemail": "missed",
    "abandoned": "abandoned",
    "shortabandoned": "short_abandoned",
}
CONTACT_OUTCOMES = {
    "answered": "answered",
    "missed": "missed",
    "voicemail": "missed",
    "abandoned": "abandoned",
    "shortabandoned": "short_abandoned",
}


def kind(keys: set[str] | frozenset[str]) -> str | None:
    return next((k for k, cols in KINDS.items() if cols <= keys), None)


def detect(head: Head) -> bool:
    return kind(head.keys) is not None


RECORDS = {
    "contacts": model.Records("arrived_at", "ended_at", identity=("contact_id",)),
    # statuses, not the events made of them: a status cut by an export window must meet its other part
    "user_status": model.Records("start", "end", entity=("agent_id",)),
}


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    """All the Talkdesk reports in `paths` as one batch of CONTACTS and STATE_EVENTS."""
    found, warnings = parse(paths, options)
    return assemble(found, options, warnings)


def parse(paths: list[Path], options: ConvertOptions) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """The reports' contacts (canonical) and user statuses (agent_id, start, end, status_label)."""
    contacts, statuses, warnings = [], [], []
    for k, frame, file, _ in P.classified(paths, kind, "a Talkdesk contacts, calls or user_status report",
                                          warnings):
        if k == "user_status":
            statuses.append(_statuses(frame, file, options))
        else:
            contacts.append((_contacts if k == "contacts" else _calls)(frame, file, options))
    found = {}
    if contacts:
        found["contacts"] = P.concat(contacts, model.CONTACTS)
    if statuses:
        found["user_status"] = pl.concat(statuses)
    return found, warnings


def assemble(found: dict[str, pl.DataFrame], options: ConvertOptions, warnings: list[str]) -> model.Batch:
    batch = model.Batch(warnings=warnings)
    if "contacts" in found:
        c = found["contacts"].unique("contact_id", keep="first", maintain_order=True)
        unqueued = c.filter((pl.col("direction") == "in") & pl.col("service_id").is_null()).height
        if unqueued:
            warnings.append(
                f"{unqueued} inbound contact(s) have no ring group and no default service: "
                "they count for their agents only, not in SERVICE rows"
            )
        batch.contacts = model.check(c, "CONTACTS", "talkdesk")
    if "user_status" in found:
        batch.state_events, w = _events(found["user_status"], options)
        warnings += w
    return batch


def _statuses(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    end = pl.col("status_end_at") if "status_end_at" in f.columns else pl.lit(None, pl.String)
    f = P.with_times(f, {"start": pl.col("status_start_at"), "end": end}, o.naive_tz)
    f = f.with_columns(P.map_ids(pl.col("user_id"), o.mapping.agents).alias("agent_id"))
    ends = {"end": "status_end_at"} if "status_end_at" in f.columns else {}
    P.raise_problems(
        [
            P.required(f, ["user_id", "status_label", "status_start_at"]),
            P.check_parsed(f, {"start": "status_start_at", **ends}, "a date and time"),
            P.bad_ids(f, ["agent_id"]),
        ],
        file,
    )
    return f.select("agent_id", "start", "end", pl.col("status_label"))


def _events(f: pl.DataFrame, o: ConvertOptions) -> tuple[pl.DataFrame, list[str]]:
    warnings = []
    n = f.height
    f = f.unique(maintain_order=True).sort("agent_id", "start", "end", nulls_last=True)
    if f.height < n:
        warnings.append(f"talkdesk: {n - f.height} duplicated user_status row(s) dropped")
    nxt = pl.col("start").shift(-1).over("agent_id")
    f = f.with_columns(
        (
            (pl.col("status_label") == pl.col("status_label").shift(1).over("agent_id"))
            & (pl.col("end").shift(1).over("agent_id") == pl.col("start"))
        )
        .fill_null(False)
        .alias("_merged"),
        (pl.col("end").is_not_null() & (nxt.is_null() | (nxt > pl.col("end")))).alias("_gap"),
    )
    f, w = P.map_states(f, "status_label", P.state_table("talkdesk", o.mapping), "talkdesk user_status")
    starts = f.filter(~pl.col("_merged")).select(
        "agent_id",
        pl.col("start").alias("at"),
        "state",
        pl.when(pl.col("state") == "NOT_READY").then(pl.col("status_label")).alias("reason"),
        pl.col("status_label").alias("raw_state"),
    )
    gaps = f.filter(pl.col("_gap")).select(
        "agent_id",
        pl.col("end").alias("at"),
        pl.lit("LOGOUT").alias("state"),
        pl.lit(None, pl.String).alias("reason"),
        pl.lit("(end of status)").alias("raw_state"),
    )
    events = pl.concat([starts, gaps]).sort("agent_id", "at")
    return model.check(events.cast(model.STATE_EVENTS), "STATE_EVENTS", "talkdesk"), warnings + w


def _first_group(expr: pl.Expr) -> pl.Expr:
    """`["rg1", "rg2"]` (a JSON list or a string holding one), `rg1,rg2` or `rg1` → `rg1`."""
    return expr.str.replace_all(r'[\[\]"\\]', "").str.split(",").list.first().str.strip_chars().replace("", None)


def _queue(f: pl.DataFrame, o: ConvertOptions) -> pl.Expr:
    groups = [c for c in ("handling_ring_groups", "ring_groups") if c in f.columns]
    rg = (
        pl.coalesce([P.per_value(f, c, _first_group, pl.String) for c in groups]) if groups else pl.lit(None, pl.String)
    )
    default = o.service or o.mapping.default_service
    return pl.coalesce(P.map_ids(rg, o.mapping.services), pl.lit(default, pl.String)).alias("service_id")


DURATIONS = {"wait_s": "wait_time", "talk_s": "talk_time", "hold_s": "hold_time", "acw_s": "after_call_work_time"}


def _durations(f: pl.DataFrame, file: str) -> pl.DataFrame:
    """Duration columns as seconds (0 when absent or empty); unreadable values are row errors."""
    given = {dst: src for dst, src in DURATIONS.items() if src in f.columns}
    f = P.with_seconds(f, {dst: (src, 1.0) for dst, src in given.items()})
    P.raise_problems([P.check_parsed(f, given, "a number of seconds")], file)
    return f.with_columns(
        *[pl.col(dst).fill_null(0.0) for dst in given],
        *[pl.lit(0.0).alias(dst) for dst in DURATIONS if dst not in given],
    )


def _finish(f: pl.DataFrame, file: str, times: dict[str, str]) -> pl.DataFrame:
    """Report unparsable times and bad IDs (all at once), then keep the CONTACTS columns."""
    P.raise_problems([P.check_parsed(f, times, "a date and time"), P.bad_ids(f, ["service_id", "agent_id"])], file)
    return f.select(list(model.CONTACTS))


def _answered_at(parsed: pl.Expr) -> pl.Expr:
    """The answer time given, else arrival + wait, for contacts an agent took."""
    wait = pl.duration(microseconds=(pl.col("wait_s") * 1e6).round(0).cast(pl.Int64))
    took = pl.col("outcome").is_in(["answered", "outbound"])
    return pl.when(took).then(pl.coalesce(parsed, pl.col("arrived_at") + wait)).alias("answered_at")


def _contacts(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    P.raise_problems([P.required(f, ["contact_id", "contact_type", "started_at", "finished_at", "direction"])], file)
    out = P.per_value(f, "direction", lambda d: d.str.to_lowercase().str.starts_with("out"), pl.Boolean)
    outcome = P.per_value(
        f, "contact_type", lambda t: P.state_key(t).replace_strict(CONTACT_OUTCOMES, default="missed"), pl.String
    )
    has_answer = "answered_at" in f.columns
    answer = pl.col("answered_at") if has_answer else pl.lit(None, pl.String)
    f = P.with_times(
        f, {"arrived_at": pl.col("started_at"), "ended_at": pl.col("finished_at"), "_answered": answer}, o.naive_tz
    )
    f = _durations(f, file)
    f = f.with_columns(
        _queue(f, o),
        (P.map_ids(pl.col("user_id"), o.mapping.agents) if "user_id" in f.columns else pl.lit(None, pl.String)).alias(
            "agent_id"
        ),
        pl.when(out).then(pl.lit("out")).otherwise(pl.lit("in")).alias("direction"),
        pl.when(out).then(pl.lit("outbound")).otherwise(outcome).alias("outcome"),
        (P.per_value(f, "transfer_out", P.yes, pl.Boolean) if "transfer_out" in f.columns else pl.lit(False)).alias(
            "transferred"
        ),
    )
    f = f.with_columns(_answered_at(pl.col("_answered")))
    return _finish(
        f,
        file,
        {"arrived_at": "started_at", "ended_at": "finished_at"} | ({"_answered": "answered_at"} if has_answer else {}),
    )


def _calls(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    P.raise_problems([P.required(f, ["call_id", "type", "start_at", "end_at"])], file)
    typ = P.per_value(f, "type", P.state_key, pl.String)
    agent = pl.coalesce(
        [pl.col(c) for c in ("handling_user_id", "user_id") if c in f.columns] or [pl.lit(None, pl.String)]
    )
    f = P.with_times(f, {"arrived_at": pl.col("start_at"), "ended_at": pl.col("end_at")}, o.naive_tz)
    f = _durations(f.drop("after_call_work_time", strict=False), file)  # calls carry no ACW
    f = f.with_columns(
        pl.col("call_id").alias("contact_id"),
        _queue(f, o),
        P.map_ids(agent, o.mapping.agents).alias("agent_id"),
        pl.when(typ.str.starts_with("outbound")).then(pl.lit("out")).otherwise(pl.lit("in")).alias("direction"),
        typ.replace_strict(CALL_OUTCOMES, default="missed").alias("outcome"),
        (P.per_value(f, "is_transfer", P.yes, pl.Boolean) if "is_transfer" in f.columns else pl.lit(False)).alias(
            "transferred"
        ),
    )
    f = f.with_columns(
        _answered_at(pl.lit(None, model.UTC_TIME)),
        pl.when(pl.col("outcome").is_in(["answered", "outbound"])).then(pl.col("agent_id")).alias("agent_id"),
    )
    return _finish(f, file, {"arrived_at": "start_at", "ended_at": "end_at"})
