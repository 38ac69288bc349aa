"""Canonical frames: the one vocabulary every source produces and every renderer consumes.

All instants are timezone-aware UTC (`Datetime("us", "UTC")`), all durations are float seconds,
all IDs are strings (leading zeros kept). Sources check their output against these schemas at the
boundary (`check`), so nothing downstream re-checks types.

Interval frames have required columns and optional ones: an optional column is present only when
the input carried it, and then it is rendered after the required columns.
"""

from __future__ import annotations

from collections.abc import Callable
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

# --- RECORDINGS: one row per recorded contact for a CONTACT.*.csv bulk import (domain §3.1).
# Keys (recording*, *_location) are the file names as the input referenced them; the renderer
# renames the media per batch. `origin_file`/`origin_line` say where the row came from.
METADATA = pl.List(pl.Struct({"name": S, "value": S}))
RECORDING_COLUMNS: list[Column] = [
    Column("origin_file", S, kind="id"),
    Column("origin_line", pl.Int64, kind="count"),
    Column("agent_id", S, "AgentId", "id"),
    Column("start_at", UTC_TIME, "ContactStartTimeMs", "time"),
    Column("recording1", S, "Recording1", "id"),
    Column("recording2", S, "Recording2", "id"),
    Column("recording3", S, "Recording3", "id"),
    Column("recording2_offset_ms", pl.Int64, "Recording2Offset", "count"),
    Column("assoc_call_id", S, "AssocCallId", "id"),
    Column("call_id", S, "CallId", "id"),
    Column("called", S, "CalledAddress", "id"),
    Column("calling", S, "CallingAddress", "id"),
    Column("client_time_zone", S, "ClientTimeZone", "id"),
    Column("direction", S, "Direction", "id"),  # "0" inbound | "1" outbound | null
    Column("line", S, "Line", "id"),
    Column("metadata", METADATA, "", "id"),  # -> metadata.<name> columns
    Column("audio_location", S, "Audio.Location", "id"),
    Column("audio_start_at", UTC_TIME, "Audio.StartTimeMs", "time"),
    Column("screen_location", S, "Screen.Location", "id"),
    Column("screen_start_at", UTC_TIME, "Screen.StartTimeMs", "time"),
]

# --- TEXT_CONTACTS: one row per chat / e-mail for a TEXTCONTACT import (domain §3.5).
TEXT_CONTACT_COLUMNS: list[Column] = [
    Column("origin_file", S, kind="id"),
    Column("origin_line", pl.Int64, kind="count"),
    Column("text_type", S, "textType", "id"),  # one of TEXT_TYPES
    Column("filename", S, "filename", "id"),  # key of the .txt body as the input referenced it
    Column("time", UTC_TIME, "time", "time"),
    Column("username", S, "username", "id"),
    Column("eval_form", S, "evalForm", "id"),
    Column("id", S, "id", "id"),
    Column("metadata", METADATA, "metadata", "id"),
    Column("receiver", pl.List(S), "receiver", "id"),
    Column("references", pl.List(S), "references", "id"),
    Column("sender", S, "sender", "id"),
    Column("subject", S, "subject", "id"),
]

QUEUE_INTERVALS = _schema(QUEUE_COLUMNS)
AGENT_INTERVALS = _schema(AGENT_COLUMNS)
STATE_EVENTS = _schema(STATE_COLUMNS)
CONTACTS = _schema(CONTACT_COLUMNS)
RECORDINGS = _schema(RECORDING_COLUMNS)
TEXT_CONTACTS = _schema(TEXT_CONTACT_COLUMNS)

FRAMES: dict[str, list[Column]] = {
    "QUEUE_INTERVALS": QUEUE_COLUMNS,
    "AGENT_INTERVALS": AGENT_COLUMNS,
    "STATE_EVENTS": STATE_COLUMNS,
    "CONTACTS": CONTACT_COLUMNS,
    "RECORDINGS": RECORDING_COLUMNS,
    "TEXT_CONTACTS": TEXT_CONTACT_COLUMNS,
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


@dataclass(frozen=True)
class Media:
    """A media file or text body a contact row may reference, read only when it is rendered.

    `origin` says where it came from (`dir/a.wav`, `calls.zip!rec/a.wav`); `load` returns its bytes
    (the source that found it decides how: a plain read, or a size-capped ZIP member read).
    """

    name: str
    size: int
    origin: str
    load: Callable[[], bytes] = field(repr=False, compare=False)


PREV = "prev:"


def with_previous(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Rows 2..n of `columns`, each beside the row before it (as `prev:<name>`).

    Both halves are zero-copy slices, so comparing neighbours this way costs no shifted copy of a
    column (on millions of rows that copy is most of the work).
    """
    rows = frame.select(columns)
    before = rows.slice(0, max(rows.height - 1, 0)).rename(lambda c: PREV + c)
    return pl.concat([rows.slice(1), before], how="horizontal")


def repeats(columns: list[str]) -> pl.Expr:
    """Over a `with_previous` frame: whether any row equals the row before it in all of `columns`."""
    return pl.all_horizontal([pl.col(c).eq_missing(pl.col(PREV + c)) for c in columns]).any()


def in_order(order: list[str]) -> pl.Expr:
    """Over a `with_previous` frame: whether every row is >= the row before it in `order`."""
    after = pl.lit(True)
    for column in reversed(order):  # lexicographic
        c, prev = pl.col(column), pl.col(PREV + column)
        after = (c > prev) | ((c == prev) & after)
    return after.fill_null(True).all()


def same_as_previous_any(frame: pl.DataFrame, columns: list[str]) -> bool:
    """Whether any row equals the row before it in every one of `columns` (nulls equal nulls)."""
    return bool(with_previous(frame, columns).select(repeats(columns)).item())


def is_sorted(frame: pl.DataFrame, order: list[str]) -> bool:
    """Whether rows are already in `order` (sources hand over sorted frames; sorting again costs a copy)."""
    return bool(with_previous(frame, order).select(in_order(order)).item())


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
    # Bulk contact import (domain §3): RECORDINGS / TEXT_CONTACTS frames, the media and text
    # bodies they may reference (key = the flattened file name rows refer to), and the row
    # problems found while reading (those rows are already left out of the frames).
    recordings: pl.DataFrame | None = None
    text_contacts: pl.DataFrame | None = None
    media: dict[str, Media] = field(default_factory=dict)
    row_problems: list[Problem] = field(default_factory=list)
    # Interval frames already in key order (interval, agent, service), so the renderer need not
    # check again. Held by identity: a frame replaced later (merged, rolled up) is not in here.
    in_key_order: list[pl.DataFrame] = field(default_factory=list)

    def key_ordered(self, frame: pl.DataFrame | None) -> bool:
        return any(frame is f for f in self.in_key_order)


@dataclass(frozen=True)
class Output:
    """One produced file: its exact name, its bytes, and what it is."""

    name: str
    data: bytes
    # gis-agent | gis-service | whit | contact-media | contact | textcontact-body | textcontact | cwfm | rtstate
    kind: str
    interval_start: object | None = None  # UTC datetime of the interval (GIS files)


# --- Bulk contact import rules (domain §3.1, §3.5) ---------------------------------------------
# Shared by the renderers (checked before anything is written) and by `gisgate validate`; both
# apply them to a frame of strings named like the import file's columns plus `_line` (and
# optionally `_file`), so a rule is written once.

METADATA_PREFIX = "metadata."
RECORDING_EXTENSIONS = ("opus", "spx", "wav", "webm", "webma", "webmv", "wmv")
AUDIO_EXTENSIONS = ("opus", "spx", "wav", "webm", "webma")  # webmv and wmv are video
TEXT_TYPES = ("chat", "email", "facebook", "other", "website")
CONTACT_FIELDS = [c.gis for c in RECORDING_COLUMNS if c.gis]
TEXT_CONTACT_FIELDS = [c.gis for c in TEXT_CONTACT_COLUMNS if c.gis]
KEY_FIELDS = ("Recording1", "Recording2", "Recording3", "Audio.Location", "Screen.Location")
EPOCH_FIELDS = ("ContactStartTimeMs", "Audio.StartTimeMs", "Screen.StartTimeMs")
MAX_LENGTH = {
    "AgentId": 254, "Recording1": 128, "Recording2": 128, "Recording3": 128, "AssocCallId": 52,
    "CallId": 128, "CalledAddress": 64, "CallingAddress": 64, "ClientTimeZone": 255, "Line": 64,
    "Audio.Location": 128, "Screen.Location": 128,
}
MAX_METADATA_NAME = 39
MAX_METADATA_VALUE = 2056
AGENT_FORMS = "a WFO person id (digits), an AD login (domain\\user) or an e-mail address"


def _rule(column: str, reason: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(column).alias("column"), reason.cast(S).alias("reason"))


def _quoted(c: str) -> pl.Expr:
    return pl.lit("'") + pl.col(c) + pl.lit("'")


def _too_long(c: str, limit: int, what: str = "") -> pl.Expr:
    n = pl.col(c).str.len_chars()
    return pl.when(n > limit).then(pl.lit(what) + n.cast(S) + pl.lit(f" characters, at most {limit} allowed"))


def _run_rules(frame: pl.DataFrame, rules: list[pl.Expr]) -> pl.DataFrame:
    """Evaluate rules row-wise; one (`_file`, `_line`, column, reason) row per broken rule."""
    empty = pl.DataFrame(schema={"_file": S, "_line": pl.Int64, "column": S, "reason": S})
    if not rules or frame.is_empty():
        return empty
    file = pl.col("_file") if "_file" in frame.columns else pl.lit("", S)
    out = (
        frame.select(file.alias("_file"), pl.col("_line"), pl.concat_list(rules).alias("p"))
        .explode("p").unnest("p").filter(pl.col("reason").is_not_null())
    )
    return out.select(empty.columns)


def blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Empty strings mean "unknown" in these files (§3.2); make them null so rules see one thing."""
    return frame.with_columns(
        pl.when(pl.col(c).str.len_chars() > 0).then(pl.col(c)).alias(c)
        for c, t in frame.schema.items() if t == S and not c.startswith("_")
    )


def contact_row_problems(frame: pl.DataFrame) -> pl.DataFrame:
    """Every §3.1 rule a CONTACT row breaks. `frame`: CONTACT columns as strings, blanks null."""
    has = set(frame.columns)
    rules: list[pl.Expr] = []
    agent = pl.col("AgentId") if "AgentId" in has else pl.lit(None, S)
    rules.append(_rule("AgentId", pl.when(agent.is_null()).then(pl.lit(f"required: {AGENT_FORMS}"))
                       .when(~agent.str.contains(r"^\d+$|\\|@")).then(
                           pl.lit("'") + agent + pl.lit(f"' is not {AGENT_FORMS}"))))
    rec1 = pl.col("Recording1") if "Recording1" in has else pl.lit(None, S)
    rules.append(_rule("Recording1", pl.when(rec1.is_null()).then(
        pl.lit("required: the file name of the contact's audio recording"))))
    for c, limit in MAX_LENGTH.items():
        if c in has:
            rules.append(_rule(c, _too_long(c, limit, "is ")))
    for c in KEY_FIELDS:
        if c in has:
            ext = pl.col(c).str.extract(r"\.([^.\\/]+)$").str.to_lowercase()
            rules.append(_rule(c, pl.when(pl.col(c).is_not_null() & ~ext.is_in(RECORDING_EXTENSIONS).fill_null(False))
                               .then(_quoted(c) + pl.lit(": media type must be one of "
                                                         + ", ".join(RECORDING_EXTENSIONS)))))
    for c in EPOCH_FIELDS:
        if c in has:
            rules.append(_rule(c, pl.when(~pl.col(c).str.contains(r"^\d{1,18}$"))
                               .then(_quoted(c) + pl.lit(" is not epoch milliseconds (digits only)"))))
    if "Recording2Offset" in has:
        rules.append(_rule("Recording2Offset", pl.when(~pl.col("Recording2Offset").str.contains(r"^-?\d{1,18}$"))
                           .then(_quoted("Recording2Offset") + pl.lit(" is not a whole number of milliseconds"))))
    if "Direction" in has:
        rules.append(_rule("Direction", pl.when(~pl.col("Direction").is_in(["0", "1"]))
                           .then(_quoted("Direction") + pl.lit(" must be 0 (inbound) or 1 (outbound)"))))
    for c in sorted(has):
        if c.startswith(METADATA_PREFIX):
            name = c[len(METADATA_PREFIX):]
            if not name or len(name) > MAX_METADATA_NAME:
                rules.append(_rule(c, pl.when(pl.col(c).is_not_null()).then(pl.lit(
                    f"metadata name is {len(name)} characters, it must be 1 to {MAX_METADATA_NAME}"))))
            rules.append(_rule(c, _too_long(c, MAX_METADATA_VALUE, "metadata value is ")))
    audio = [c for c in KEY_FIELDS[:4] if c in has]
    if audio:
        keys = pl.concat_list([pl.col(c) for c in audio]).list.drop_nulls().list.unique(maintain_order=True)
        audios = keys.list.eval(pl.element().filter(
            pl.element().str.extract(r"\.([^.]+)$").str.to_lowercase().is_in(AUDIO_EXTENSIONS)))
        rules.append(_rule(audio[0], pl.when(audios.list.len() > 1).then(
            pl.lit("only one audio file per contact, found ") + audios.list.len().cast(S)
            + pl.lit(": ") + audios.list.join(", "))))
    return _run_rules(frame, rules)


def missing_media(frame: pl.DataFrame, available: set[str] | frozenset[str]) -> pl.DataFrame:
    """A problem for every media key the rows reference that is not among `available`."""
    rules = [
        _rule(c, pl.when(pl.col(c).is_not_null() & ~pl.col(c).is_in(sorted(available)))
              .then(_quoted(c) + pl.lit(" is not in the upload (no such media file)")))
        for c in KEY_FIELDS if c in frame.columns
    ]
    return _run_rules(frame, rules)


def text_row_problems(frame: pl.DataFrame) -> pl.DataFrame:
    """Every §3.5 rule a TEXTCONTACT row breaks. `frame`: TEXTCONTACT columns as strings, blanks null."""
    has = set(frame.columns)
    col = {c: (pl.col(c) if c in has else pl.lit(None, S)) for c in ("textType", "filename", "time", "username")}
    rules = [
        _rule("textType", pl.when(col["textType"].is_null()).then(pl.lit("required: " + ", ".join(TEXT_TYPES)))
              .when(~col["textType"].is_in(TEXT_TYPES)).then(
                  pl.lit("'") + col["textType"] + pl.lit("' is not one of " + ", ".join(TEXT_TYPES)))),
        _rule("filename", pl.when(col["filename"].is_null()).then(pl.lit("required: the .txt file of the text"))
              .when(~col["filename"].str.to_lowercase().str.ends_with(".txt")).then(
                  pl.lit("'") + col["filename"] + pl.lit("' must be a .txt file"))),
        _rule("time", pl.when(col["time"].is_null()).then(pl.lit("required: the start, epoch milliseconds"))
              .when(~col["time"].str.contains(r"^\d{1,18}$")).then(
                  pl.lit("'") + col["time"] + pl.lit("' is not epoch milliseconds (digits only)"))),
        _rule("username", pl.when(col["username"].is_null()).then(pl.lit("required: the agent's login"))),
    ]
    if "metadata" in has:
        bad = pl.col("metadata").str.split("|").list.eval(pl.element().filter(~pl.element().str.contains("=")))
        rules.append(_rule("metadata", pl.when(bad.list.len() > 0).then(
            pl.lit("'") + bad.list.first() + pl.lit("' is not name=value (metadata is name=value|name=value)"))))
    return _run_rules(frame, rules)


def problems(frame: pl.DataFrame, file: str = "") -> list[Problem]:
    """Rows of (`_file`, `_line`, column, reason) as sorted Problems (`file` when `_file` is empty)."""
    return sorted(Problem(f or file, line, column, reason) for f, line, column, reason in frame.iter_rows())
