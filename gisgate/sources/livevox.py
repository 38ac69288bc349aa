"""LiveVox exports (domain-spec §5.4): agent event feed pages, interaction event feed pages, and
service statistics snapshots. Many pages of one feed in one conversion are merged.

* Agent events (`{"agentEvent": [...], "token": ...}`): `timestamp` epoch ms (ms or s, numbers or
  strings, detected per value), agent = `agentLoginId`, else the numeric `agentId`; `eventType`
  through the state table; `notReadyReasonCode` is the reason. Pages overlap and arrive out of
  order: events are de-duplicated and sorted.
* Interaction events (`{"events": [...]}`, ISO-8601 strings with offsets): grouped into contacts
  by `transactionId` (else `sessionId`); arrival = CALL_START `start`, end = CALL_TERMINATION
  `end`, talk = `duration`; a contact with an agent is answered (at end − talk), one without is
  abandoned. A contact with no CALL_TERMINATION yet is still in progress and left out (warned).
* Service statistics (records with `serviceId` and `totalOffered`, cumulative for the day, with a
  `timestamp` per record or on the wrapper, else the time in the name a gisgate source landed the
  answer under): the interval starting at one snapshot gets the
  difference to the next one; averages are turned into totals (× handled) before differencing;
  a counter that goes down was reset (new day), so the later value is the difference.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError, InputError
from gisgate.sources import _platform as P
from gisgate.sources._io import LINE, Head
from gisgate.transform import clock

SNAPSHOT_TIME = ["timestamp", "snapshotTime", "asOf", "time"]
LANDED = re.compile(r"-\d{8}T\d{6}Z-(\d{8}T\d{6}Z)(?:-p\d+)?\.json$")  # a source's file name: its window end


def kind(keys: set[str] | frozenset[str]) -> str | None:
    if {"eventType", "timestamp"} <= keys and ({"agentId", "agentLoginId"} & keys):
        return "agent"
    if "callEventType" in keys:
        return "interaction"
    if {"serviceId", "totalOffered"} <= keys:
        return "service"
    if "readyDuration" in keys and ({"agentId", "agentLoginId"} & keys):
        return "agentstats"
    return None


def detect(head: Head) -> bool:
    return "agentEvent" in head.wrapper or kind(head.keys) is not None


RECORDS = {
    "agent": model.Records("at", entity=("agent_id",)),
    # a call's events, assembled into one contact: the stream keeps them together
    "interaction": model.Records("_start", "_end", group="_id"),
    # cumulative counters: an interval's numbers are the difference to the next snapshot
    "service": model.Records("_at", entity=("service_id",), cumulative=True),
    "agentstats": model.Records("_at", entity=("agent_id", "service_id"), cumulative=True),
}
INTERACTION = ["_id", "callEventType", "_start", "_end", "_duration", "service_id", "agent_id", "_out"]


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    found, warnings = parse(paths, options)
    return assemble(found, options, warnings)


def parse(paths: list[Path], options: ConvertOptions) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Agent and interaction events, service and agent statistics snapshots, as the files hold them."""
    parts: dict[str, list[pl.DataFrame]] = {k: [] for k in RECORDS}
    warnings: list[str] = []
    what = "a LiveVox agent event, interaction event or service statistics record"
    for k, frame, file, scalars in P.classified(paths, kind, what, warnings):
        if k == "agent":
            parts["agent"].append(_agent_events(frame, file, options))
        elif k == "interaction":
            parts["interaction"].append(_interaction_events(frame, file, options).select(INTERACTION))
        elif k == "service":
            parts["service"].append(_snapshots(frame, scalars, file, options))
        else:
            parts["agentstats"].append(_agent_snapshots(frame, scalars, file, options))
    return {k: pl.concat(v, how="diagonal_relaxed") for k, v in parts.items() if v}, warnings


def assemble(found: dict[str, pl.DataFrame], options: ConvertOptions, warnings: list[str]) -> model.Batch:
    batch = model.Batch(warnings=warnings)
    if "agent" in found:
        events, w = P.map_states(found["agent"], "raw_state", P.state_table("livevox", options.mapping),
                                 "livevox agent events")
        warnings += w
        key = P.state_key(pl.col("raw_state"))
        events = events.with_columns(
            pl.when(pl.col("state") != "NOT_READY")
            .then(None)
            .when(key == "notready")
            .then(pl.col("_reason"))
            .when(key == "logon")
            .then(pl.lit("LOGON"))
            .otherwise(pl.col("raw_state"))
            .alias("reason")
        )
        batch.state_events = model.check(events.select(list(model.STATE_EVENTS)), "STATE_EVENTS", "livevox")
    if "interaction" in found:
        batch.contacts = _contacts(found["interaction"], warnings)
    if "service" in found:
        batch.queue_intervals = _deltas(found["service"], options, warnings)
    if "agentstats" in found:
        batch.agent_intervals = _agent_deltas(found["agentstats"], options)
    return batch


def _agent_events(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    login = pl.col("agentLoginId") if "agentLoginId" in f.columns else pl.lit(None, pl.String)
    numeric = pl.col("agentId") if "agentId" in f.columns else pl.lit(None, pl.String)
    reason = pl.col("notReadyReasonCode") if "notReadyReasonCode" in f.columns else pl.lit(None, pl.String)
    f = P.with_times(f, {"at": pl.col("timestamp")}, o.naive_tz)
    f = f.with_columns(
        P.map_ids(pl.coalesce(login, numeric), o.mapping.agents).alias("agent_id"),
        pl.col("at"),
        pl.col("eventType").alias("raw_state"),
        reason.alias("_reason"),
    )
    P.raise_problems(
        [
            P.required(
                f.with_columns(pl.col("agent_id").alias("agentLoginId")), ["agentLoginId", "timestamp", "eventType"]
            ),
            P.check_parsed(f, {"at": "timestamp"}, "a time"),
            P.bad_ids(f, ["agent_id"]),
        ],
        file,
    )
    return f.select("agent_id", "at", "raw_state", "_reason")


def _interaction_events(f: pl.DataFrame, file: str, o: ConvertOptions) -> pl.DataFrame:
    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in f.columns else pl.lit(None, pl.String)

    f = P.with_times(f, {"_start": col("start"), "_end": col("end")}, o.naive_tz)
    f = f.with_columns(
        pl.coalesce(col("transactionId"), col("sessionId")).alias("_id"),
        pl.col("_start"),
        pl.col("_end"),
        P.seconds(col("duration")).alias("_duration"),
        P.map_ids(pl.coalesce(col("serviceId"), col("callServiceId")), o.mapping.services).alias("service_id"),
        P.map_ids(pl.coalesce(col("agentLoginId"), col("agentId")), o.mapping.agents).alias("agent_id"),
        (col("campaignType").str.to_uppercase() == "OUTBOUND").fill_null(False).alias("_out"),
        pl.lit(file).alias("_file"),
    )
    checks = [
        P.required(f.with_columns(pl.col("_id").alias("transactionId")), ["transactionId", "callEventType"]),
        P.check_parsed(
            f, {"_start": "start", "_end": "end"} if "end" in f.columns else {"_start": "start"}, "an ISO-8601 time"
        ),
        P.bad_ids(f, ["service_id", "agent_id"]),
    ]
    if "duration" in f.columns:
        checks.append(P.check_parsed(f, {"_duration": "duration"}, "a number of seconds"))
    P.raise_problems(checks, file)
    return f.select(
        "_id", "callEventType", "_start", "_end", "_duration", "service_id", "agent_id", "_out", LINE, "_file"
    )


def _contacts(f: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    typ = pl.col("callEventType").str.to_uppercase()
    g = f.group_by("_id").agg(
        pl.col("_start").filter(typ == "CALL_START").min().alias("_arr"),
        pl.col("_start").min().alias("_first"),
        pl.col("_end").filter(typ == "CALL_TERMINATION").max().alias("ended_at"),
        pl.col("_duration").filter(typ == "CALL_TERMINATION").max().alias("_talk_t"),
        pl.col("_duration").max().alias("_talk_any"),
        pl.col("service_id").drop_nulls().first(),
        pl.col("agent_id").drop_nulls().first(),
        pl.col("_out").any(),
    )
    open_ = g.filter(pl.col("ended_at").is_null()).height
    if open_:
        warnings.append(f"livevox: {open_} interaction(s) without CALL_TERMINATION (still in progress) left out")
    g = g.filter(pl.col("ended_at").is_not_null()).with_columns(
        pl.coalesce("_arr", "_first", "ended_at").alias("arrived_at"),
        pl.coalesce("_talk_t", "_talk_any", pl.lit(0.0)).alias("talk_s"),
    )
    answered = pl.col("agent_id").is_not_null()
    ans_at = pl.max_horizontal(
        pl.col("arrived_at"),
        pl.col("ended_at") - pl.duration(microseconds=(pl.col("talk_s") * 1e6).round(0).cast(pl.Int64)),
    )
    out = g.select(
        pl.col("_id").alias("contact_id"),
        "service_id",
        "agent_id",
        pl.when(pl.col("_out")).then(pl.lit("out")).otherwise(pl.lit("in")).alias("direction"),
        "arrived_at",
        pl.when(answered).then(ans_at).alias("answered_at"),
        "ended_at",
        pl.when(pl.col("_out"))
        .then(pl.lit("outbound"))
        .when(answered)
        .then(pl.lit("answered"))
        .otherwise(pl.lit("abandoned"))
        .alias("outcome"),
        pl.when(answered)
        .then((ans_at - pl.col("arrived_at")).dt.total_microseconds() / 1e6)
        .otherwise((pl.col("ended_at") - pl.col("arrived_at")).dt.total_microseconds() / 1e6)
        .alias("wait_s"),
        pl.when(answered).then(pl.col("talk_s")).otherwise(0.0).alias("talk_s"),
        pl.lit(0.0).alias("hold_s"),
        pl.lit(0.0).alias("acw_s"),
        pl.lit(False).alias("transferred"),
    ).sort("arrived_at", "contact_id")
    return model.check(out, "CONTACTS", "livevox")


STAT_TOTALS = ["totalOffered", "totalHandled", "totalAbandoned", "totalCallsAnsweredWithinSLA"]
STAT_AVERAGES = {
    "talk_s": "averageTalkDuration",
    "acw_s": "averageWrapupDuration",
    "answer_delay_s": "averageSpeedOfAnswer",
}


def _snapshot_time(f: pl.DataFrame, scalars: dict, file: str, what: str) -> tuple[str | None, pl.Expr]:
    """The snapshot time: a field on each record (its name is returned too, for error messages), or
    one on the wrapping object, or — for an answer as the API gave it, which carries none — the time
    a gisgate source took it, in the name it landed under (`lv-serviceStats-<t>-<t>.json`)."""
    stamp = next((c for c in SNAPSHOT_TIME if c in f.columns), None)
    wrapped = next((scalars[k] for k in SNAPSHOT_TIME if k in scalars), None)
    if stamp is None and wrapped is None:
        landed = LANDED.search(Path(file).name)
        if landed is None:
            raise InputError(
                f"LiveVox {what} statistics need the snapshot time: a `timestamp` field on each record "
                "or on the wrapping object (or the name a gisgate source landed the answer under)",
                file,
            )
        wrapped = datetime.strptime(landed.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()
    return stamp, pl.col(stamp) if stamp else pl.lit(str(wrapped))


def _snapshots(f: pl.DataFrame, scalars: dict, file: str, o: ConvertOptions) -> pl.DataFrame:
    stamp, t = _snapshot_time(f, scalars, file, "service")
    f = P.with_times(f, {"_at": t}, o.naive_tz)
    f = f.with_columns(
        pl.col("_at"),
        P.map_ids(pl.col("serviceId"), o.mapping.services).alias("service_id"),
        *[
            P.seconds(pl.col(c)).fill_null(0.0).alias(c) if c in f.columns else pl.lit(0.0).alias(c)
            for c in STAT_TOTALS
        ],
        *[
            P.seconds(pl.col(c)).fill_null(0.0).alias(f"_{c}") if c in f.columns else pl.lit(0.0).alias(f"_{c}")
            for c in STAT_AVERAGES.values()
        ],
    )
    P.raise_problems([P.check_parsed(f, {"_at": stamp} if stamp else {}, "a time"), P.bad_ids(f, ["service_id"])], file)
    return f.select(
        "_at",
        "service_id",
        *STAT_TOTALS,
        *[(pl.col(f"_{src}") * pl.col("totalHandled")).alias(dst) for dst, src in STAT_AVERAGES.items()],
    )


def _deltas(f: pl.DataFrame, o: ConvertOptions, warnings: list[str]) -> pl.DataFrame:
    cum = STAT_TOTALS + list(STAT_AVERAGES)
    f = f.unique(["service_id", "_at"], keep="last").sort("service_id", "_at")
    nxt = {c: pl.col(c).shift(-1).over("service_id") for c in [*cum, "_at"]}
    reset = nxt["totalOffered"] < pl.col("totalOffered")
    d = f.with_columns(
        *[pl.when(reset).then(nxt[c]).otherwise(nxt[c] - pl.col(c)).clip(0.0).alias(f"d_{c}") for c in cum],
        ((nxt["_at"] - pl.col("_at")).dt.total_minutes()).alias("_gap"),
    ).filter(pl.col("_gap").is_not_null())
    step = o.source_interval or o.interval
    if (d["_gap"] > step).any():
        warnings.append(
            f"livevox: some service snapshots are more than {step} minutes apart; "
            "the difference is counted in the earlier interval"
        )
    handled = pl.col("d_totalHandled")
    out = d.select(
        clock.floor_local(pl.col("_at"), o.tz, step).alias("interval_start"),
        "service_id",
        pl.col("d_totalOffered").alias("offered"),
        handled.alias("handled"),
        handled.alias("answered"),
        pl.col("d_totalAbandoned").alias("abandoned"),
        pl.col("d_talk_s").alias("talk_s"),
        pl.lit(0.0).alias("hold_s"),
        pl.col("d_acw_s").alias("acw_s"),
        pl.col("d_answer_delay_s").alias("answer_delay_s"),
        pl.when(pl.col("d_totalOffered") > 0)
        .then((pl.col("d_totalCallsAnsweredWithinSLA") * 100 / pl.col("d_totalOffered")).clip(0.0, 100.0))
        .otherwise(0.0)
        .alias("service_level_pct"),
    )
    out = out.group_by("interval_start", "service_id").agg(
        pl.col("service_level_pct").mul(pl.col("offered")).sum().truediv(pl.col("offered").sum()).fill_nan(0.0),
        pl.exclude("service_level_pct").sum(),
    )
    out = out.select(list(model.QUEUE_INTERVALS)[:11]).sort("interval_start", "service_id")
    return model.check(out, "QUEUE_INTERVALS", "livevox")


AGENT_STATS = {
    "ready": "readyDuration",
    "not_ready": "totalNotReadyDuration",
    "talk": "talkDuration",
    "wrap": "wrapupDuration",
    "inbound": "inboundCalls",
    "outbound": "outboundCalls",
}


def _agent_snapshots(f: pl.DataFrame, scalars: dict, file: str, o: ConvertOptions) -> pl.DataFrame:
    """Agent statistics snapshots (cumulative today, durations in seconds) per agent and service."""
    stamp, t = _snapshot_time(f, scalars, file, "agent")
    login = pl.col("agentLoginId") if "agentLoginId" in f.columns else pl.lit(None, pl.String)
    numeric = pl.col("agentId") if "agentId" in f.columns else pl.lit(None, pl.String)
    service = pl.col("serviceId") if "serviceId" in f.columns else pl.lit(None, pl.String)
    f = P.with_times(f, {"_at": t}, o.naive_tz)
    given = {k: v for k, v in AGENT_STATS.items() if v in f.columns}
    f = P.with_seconds(f, {k: (v, 1.0) for k, v in given.items()})
    f = f.with_columns(
        P.map_ids(pl.coalesce(login, numeric), o.mapping.agents).alias("agent_id"),
        pl.coalesce(P.map_ids(service, o.mapping.services), pl.lit(o.service or o.mapping.default_service)).alias(
            "service_id"
        ),
        *[pl.col(k).fill_null(0.0) for k in given],
        *[pl.lit(0.0).alias(k) for k in AGENT_STATS if k not in given],
    )
    P.raise_problems(
        [
            P.check_parsed(f, {"_at": stamp} if stamp else {}, "a time"),
            P.check_parsed(f, given, "a non-negative number"),
            P.bad_ids(f, ["agent_id", "service_id"]),
        ],
        file,
    )
    if f["service_id"].null_count():
        raise ConfigError("LiveVox agent statistics without serviceId need --service ID (or mapping.default_service)")
    return f.select("_at", "agent_id", "service_id", *AGENT_STATS)


def _agent_deltas(f: pl.DataFrame, o: ConvertOptions) -> pl.DataFrame:
    """AGENT rows from the differences of successive agent snapshots (a decrease is a counter reset)."""
    keys = ["agent_id", "service_id"]
    f = f.unique([*keys, "_at"], keep="last").sort(*keys, "_at")
    nxt = {c: pl.col(c).shift(-1).over(keys) for c in [*AGENT_STATS, "_at"]}
    reset = pl.any_horizontal(nxt[c] < pl.col(c) for c in AGENT_STATS)
    d = f.with_columns(
        *[pl.when(reset).then(nxt[c]).otherwise(nxt[c] - pl.col(c)).clip(0.0).alias(c) for c in AGENT_STATS],
    ).filter(nxt["_at"].is_not_null())
    step = o.source_interval or o.interval
    rows = (
        d.with_columns(clock.floor_local(pl.col("_at"), o.tz, step).alias("interval_start"))
        .group_by("interval_start", *keys)
        .agg(pl.col(list(AGENT_STATS)).sum())
        .with_columns(
            (pl.col("inbound") + pl.col("outbound")).alias("handled"),
            pl.col("talk").alias("talk_s"),
            pl.lit(0.0).alias("hold_s"),
            pl.col("wrap").alias("acw_s"),
            (pl.col("talk") + pl.col("wrap")).alias("period_handle_s"),
            # per-service state time: the agent's unprorated values are its sums over its services,
            # and each service's own share is its prorated value
            pl.col("ready").sum().over("interval_start", "agent_id").alias("ready_s"),
            pl.col("not_ready").sum().over("interval_start", "agent_id").alias("not_ready_s"),
            pl.sum_horizontal(AGENT_STATS_TIME).sum().over("interval_start", "agent_id").alias("in_session_s"),
            pl.col("outbound").alias("external_out"),
            pl.col("ready").alias("prorated_ready_s"),
            pl.col("not_ready").alias("prorated_not_ready_s"),
        )
    )
    cols = [c for c in model.AGENT_INTERVALS if c in rows.columns]
    return model.check(rows.select(cols).sort("interval_start", *keys), "AGENT_INTERVALS", "livevox")


AGENT_STATS_TIME = ["ready", "not_ready", "talk", "wrap"]
