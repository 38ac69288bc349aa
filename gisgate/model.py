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

# --- STATE_EVENTS: one row per agent state change. Its texts may also be categorical (`COMPACT`): a
# source that streams millions of events keeps each value in 4 bytes instead of a 16-byte string view.
# Consumers that need strings (the event renderers, the stream's store) take `strings(frame)`.
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


COMPACT = {"STATE_EVENTS"}  # frames whose String columns may be categorical instead


def strings(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    """`frame` with its categorical columns as strings (as a COMPACT frame's consumers may need)."""
    if frame is None or not any(isinstance(t, pl.Categorical) for t in frame.schema.dtypes()):
        return frame
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


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
        elif frame.schema[c.name] != c.dtype and not (
            frame_name in COMPACT and c.dtype == S and isinstance(frame.schema[c.name], pl.Categorical)
        ):
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
    # Interval frames out of key order, each with its row numbers in key order (rows are not moved
    # to save a sorted copy; the renderer takes them in this order). Held by identity too.
    key_order: list[tuple[pl.DataFrame, pl.Series]] = field(default_factory=list)

    def key_ordered(self, frame: pl.DataFrame | None) -> bool:
        return any(frame is f for f in self.in_key_order)

    def order_of(self, frame: pl.DataFrame | None) -> pl.Series | None:
        return next((rows for f, rows in self.key_order if f is frame), None)


@dataclass(frozen=True)
class Records:
    """How one kind of a source's records streams (the gateway's stream keeps the union of every drop).

    A record is one row of a frame the source parses from an input before it assembles its batch
    (for most sources, a row of a canonical frame). The stream keeps each record once: the latest
    one per `identity` (a platform id, an interval key), or every distinct whole record when
    `identity` is empty. To re-derive some intervals it takes the records whose time
    [`start`, `end`] reaches them, and with them each `entity`'s record before and after (an
    agent's state continues until its next one), and every record of a `group` it touches (a call's
    events are assembled into one contact).
    """

    start: str
    end: str | None = None
    identity: tuple[str, ...] = ()
    entity: tuple[str, ...] = ()
    group: str | None = None
    interval: bool = False  # rows of an interval frame: a record touches its own interval only
    cumulative: bool = False  # counters: a record also changes the interval of its entity's previous one


# The records of a source that streams its canonical frames as they are.
CANONICAL_RECORDS = {
    "state_events": Records("at", entity=("agent_id",)),
    "contacts": Records("arrived_at", "ended_at", identity=("contact_id",)),
    "queue_intervals": Records("interval_start", identity=("interval_start", "service_id"), interval=True),
    "agent_intervals": Records("interval_start", identity=("interval_start", "agent_id", "service_id"),
                               interval=True),
}


@dataclass(frozen=True)
class Output:
    """One produced file: its exact name, its bytes, and what it is."""

    name: str
    data: bytes
    # gis-agent | gis-service | whit | contact-media | contact | textcontact-body | textcontact | cwfm | rtstate
    kind: str
    interval_start: object | None = None  # UTC datetime of the interval (GIS files)


# --- Bulk contact import fields (domain §3.1, §3.5); their row rules are in validate/rows.py ----------

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


def blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Empty strings mean "unknown" in these files (§3.2); make them null so rules see one thing."""
    return frame.with_columns(
        pl.when(pl.col(c).str.len_chars() > 0).then(pl.col(c)).alias(c)
        for c, t in frame.schema.items() if t == S and not c.startswith("_")
    )
